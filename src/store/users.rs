//! The `users` tree: username → JSON [`User`]. Writes are durable (flushed) on return.

use super::{Result, Store, StoreError, decode};
use crate::domain::user::User;

fn encode(u: &User) -> Result<Vec<u8>> {
    serde_json::to_vec(u).map_err(|e| StoreError::Decode { key: u.username.clone(), reason: e.to_string() })
}

impl Store {
    pub fn get_user(&self, username: &str) -> Result<Option<User>> {
        match self.trees.users.get(username.as_bytes())? {
            Some(v) => Ok(Some(decode(username.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a user.
    pub fn put_user(&self, user: &User) -> Result<()> {
        self.trees.users.insert(user.username.as_bytes(), encode(user)?)?;
        self.trees.durable()?;
        Ok(())
    }

    /// Inserts a user only when the name is free; false (nothing written) when it is taken.
    pub fn insert_new_user(&self, user: &User) -> Result<bool> {
        let t = &self.trees;
        let v = encode(user)?;
        let inserted = t.db.transaction(|tx| {
            if tx.get(&t.users, user.username.as_bytes())?.is_some() {
                return Ok::<_, StoreError>(false);
            }
            tx.insert(&t.users, user.username.as_bytes(), &v)?;
            Ok(true)
        })?;
        if !inserted {
            return Ok(false);
        }
        self.trees.durable()?;
        Ok(true)
    }

    /// Every user, by username.
    pub fn list_users(&self) -> Result<Vec<User>> {
        let mut out = Vec::new();
        for e in self.trees.users.iter() {
            let (k, v) = e?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }
}
