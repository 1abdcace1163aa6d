//! Inbound commands already answered (`commands` tree: command id → JSON [`CommandDone`]), so a command
//! delivered twice (QoS 1 redelivery, a server's retry) is acknowledged again but applied once.

use super::{Result, Store, StoreError, decode};
use serde::{Deserialize, Serialize};

/// The longest command id kept (bytes); longer ones are refused before anything is looked up.
pub const MAX_COMMAND_ID_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandDone {
    pub name: String,
    pub at_ms: i64,
    /// The answer sent the first time: Ok(result) or Err(reason).
    pub result: std::result::Result<serde_json::Value, String>,
}

impl Store {
    /// The answer to command `id` if it was already handled.
    pub fn command_done(&self, id: &str) -> Result<Option<CommandDone>> {
        match self.trees.commands.get(id.as_bytes())? {
            Some(v) => decode(id.as_bytes(), &v).map(Some),
            None => Ok(None),
        }
    }

    /// Records the answer to command `id`; durable on return.
    pub fn record_command(&self, id: &str, done: &CommandDone) -> Result<()> {
        if id.is_empty() || id.len() > MAX_COMMAND_ID_BYTES {
            return Err(StoreError::Decode {
                key: "command id".into(),
                reason: format!("must be 1 to {MAX_COMMAND_ID_BYTES} bytes"),
            });
        }
        let v = serde_json::to_vec(done)
            .map_err(|e| StoreError::Decode { key: "command".into(), reason: e.to_string() })?;
        self.trees.commands.insert(id.as_bytes(), v)?;
        self.trees.durable()?;
        Ok(())
    }

    /// Forgets answers older than `before_ms`; returns how many. A server retries within minutes, not months.
    pub fn prune_commands(&self, before_ms: i64) -> Result<usize> {
        let mut n = 0;
        for e in self.trees.commands.iter() {
            let (k, v) = e?;
            if decode::<CommandDone>(&k, &v).map(|d| d.at_ms < before_ms).unwrap_or(true) {
                self.trees.commands.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
