//! Topic names under `<prefix>/<site>/<device>/`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, site: &str, device: &str) -> Topics {
        Topics { base: format!("{prefix}/{site}/{device}") }
    }

    pub fn topic(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.base)
    }

    pub fn alerts(&self) -> String {
        self.topic("alerts")
    }
    pub fn reads(&self) -> String {
        self.topic("reads")
    }
    pub fn status(&self) -> String {
        self.topic("status")
    }
    pub fn health(&self) -> String {
        self.topic("health")
    }
    pub fn ack(&self) -> String {
        self.topic("ack")
    }
    /// Subscription for inbound commands.
    pub fn commands(&self) -> String {
        self.topic("cmd/#")
    }

    /// The command name of an inbound topic (`…/cmd/hotlist` → `hotlist`), if it is one of ours.
    pub fn command_of<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(self.base.as_str())?.strip_prefix("/cmd/").filter(|c| !c.is_empty() && !c.contains('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_commands() {
        let t = Topics::new("polewatch", "main-st", "pole-01");
        assert_eq!(t.alerts(), "polewatch/main-st/pole-01/alerts");
        assert_eq!(t.commands(), "polewatch/main-st/pole-01/cmd/#");
        assert_eq!(t.command_of("polewatch/main-st/pole-01/cmd/hotlist"), Some("hotlist"));
        assert_eq!(t.command_of("polewatch/main-st/pole-01/cmd/"), None);
        assert_eq!(t.command_of("polewatch/main-st/pole-01/cmd/a/b"), None);
        assert_eq!(t.command_of("polewatch/main-st/pole-02/cmd/hotlist"), None);
    }
}
