//! A minimal W3C WebDriver client for Debian's chromedriver driving headless Chromium.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    driver: Child,
    downloads: std::path::PathBuf,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Browser {
    /// None when chromium or chromedriver is missing (the caller says why it skips).
    pub fn start() -> Option<Browser> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let port = super::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent().get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().ok()?;
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).ok()?;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                "--window-size=1280,900", "--ignore-certificate-errors", format!("--user-data-dir={}", profile.path().display())
            ], "prefs": {"download.default_directory": downloads.display().to_string(), "download.prompt_for_download": false}}
        }}});
        let mut b = Browser { driver, downloads, base, session: String::new(), _profile: profile };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .or_else(|| v["value"]["sessionId"].as_str())
            .expect("webdriver session")
            .to_string();
        Some(b)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body) {
            Ok(v) => v,
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    /// A call whose WebDriver error is returned (a stale element: the page re-rendered it meanwhile).
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{}", self.base, path);
        let a = agent();
        let mut res = match (method, body) {
            ("GET", _) => a.get(&url).call(),
            ("DELETE", _) => a.delete(&url).call(),
            (_, Some(b)) => a.post(&url).send_json(b),
            (_, None) => a.post(&url).send_json(json!({})),
        }
        .expect("webdriver request");
        let v: Value = res.body_mut().read_json().expect("webdriver json");
        if let Some(err) = v["value"]["error"].as_str() {
            return Err(format!("{err}: {}", v["value"]["message"]));
        }
        Ok(v)
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{}", self.session, rest)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    /// Waits for a CSS selector to match a displayed element; returns its id.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = format!("{}{}", self.base, self.s("/element"));
            let mut res = agent().post(&url).send_json(json!({"using": "css selector", "value": css})).expect("find");
            let v: Value = res.body_mut().read_json().expect("json");
            if let Some(id) = v["value"][ELEMENT].as_str() {
                let shown =
                    self.try_call("GET", &self.s(&format!("/element/{id}/displayed")), None).unwrap_or_default();
                if shown["value"] == true {
                    return id.to_string();
                }
            }
            assert!(Instant::now() < deadline, "no visible element {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/clear")), None);
        self.call("POST", &self.s(&format!("/element/{id}/value")), Some(json!({ "text": text })));
    }

    /// Sends keys to an element without clearing it (WebDriver key codes: "\u{E015}" is ArrowDown).
    pub fn keys(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/value")), Some(json!({ "text": text })));
    }

    /// Where the browser saves downloads.
    pub fn download_dir(&self) -> &std::path::Path {
        &self.downloads
    }

    pub fn click(&self, css: &str) {
        // An element the page re-renders between finding and clicking it is found again.
        for _ in 0..5 {
            let id = self.find(css);
            match self.try_call("POST", &self.s(&format!("/element/{id}/click")), None) {
                Ok(_) => return,
                Err(e) if e.starts_with("stale element reference") => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("webdriver click {css}: {e}"),
            }
        }
        panic!("{css} kept going stale");
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.s(&format!("/element/{id}/text")), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Selects an option of a `<select>` by its visible text.
    pub fn select(&self, css: &str, option_text: &str) {
        let sel = self.find(css);
        let opts = self.call(
            "POST",
            &self.s(&format!("/element/{sel}/elements")),
            Some(json!({"using": "css selector", "value": "option"})),
        );
        for o in opts["value"].as_array().cloned().unwrap_or_default() {
            let id = o[ELEMENT].as_str().unwrap_or_default().to_string();
            if self.call("GET", &self.s(&format!("/element/{id}/text")), None)["value"] == option_text {
                self.call("POST", &self.s(&format!("/element/{id}/click")), None);
                return;
            }
        }
        panic!("no option {option_text} in {css}");
    }

    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // The page may re-render the element between finding and reading it: read again.
            let id = self.find(css);
            let t = self
                .try_call("GET", &self.s(&format!("/element/{id}/text")), None)
                .ok()
                .and_then(|v| v["value"].as_str().map(str::to_string))
                .unwrap_or_default();
            if t.contains(needle) {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} never showed {needle:?}; it shows {t:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a script in the current frame and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.call("POST", &self.s("/execute/sync"), Some(json!({"script": script, "args": []})))["value"].clone()
    }

    /// Makes the `index`-th frame of the page the current one.
    pub fn switch_to_frame(&self, index: u16) {
        self.call("POST", &self.s("/frame"), Some(json!({"id": index})));
    }

    /// Resizes the window (a phone's width, say).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call("POST", &self.s("/window/rect"), Some(json!({"width": width, "height": height})));
    }

    pub fn screenshot_png(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        base64::engine::general_purpose::STANDARD.decode(v["value"].as_str().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = agent().delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
