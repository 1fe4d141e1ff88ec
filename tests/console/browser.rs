//! A headless Chromium over WebDriver: `chromedriver` on a free 127.0.0.1
//! port, one browser session per user, and the few page actions the tests use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::testkit::wait_for;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A `chromedriver` process, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("chromedriver had already exited: {e}");
        }
        let _ = self.child.wait();
    }
}

/// Fails (never skips) when a browser part is missing.
fn require(path: &str, package: &str) -> String {
    let bin = std::env::var(format!(
        "ORGSYNC_TEST_{}",
        package.to_uppercase().replace('-', "_")
    ))
    .unwrap_or_else(|_| path.to_owned());
    assert!(
        std::path::Path::new(&bin).exists(),
        "the console's browser tests need `{bin}`: install the Debian package `{package}` \
         (scripts/install-deps does)"
    );
    bin
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it answers.
    pub async fn start() -> Driver {
        let bin = require(CHROMEDRIVER, "chromium-driver");
        require(CHROMIUM, "chromium");
        // A port free a moment ago; chromedriver binds it at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        wait_for(
            "chromedriver to answer /status",
            Duration::from_secs(20),
            async || match reqwest::get(&status).await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{}", r.status())),
                Err(e) => Err(e.to_string()),
            },
        )
        .await;
        Driver { child, url }
    }

    /// A new browser (its own profile and cookies), 1280x800, headless;
    /// `javascript: false` disables scripts in it.
    pub async fn browser(&self, javascript: bool) -> Browser {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--window-size=1280,800",
            "--lang=en-US",
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false");
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client =
            Client::with_capabilities_and_connector(&self.url, &caps, HttpConnector::new())
                .await
                .expect("a chromium session");
        client.set_window_size(1280, 800).await.unwrap();
        Browser { client }
    }
}

/// One browser session.
pub struct Browser {
    pub client: Client,
}

/// Where the tests' screenshots go (kept as artifacts).
fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks the link or button whose text is `text` and waits until the
    /// page it leads to replaced this one.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!("//*[(self::a or self::button) and normalize-space(.)='{text}']");
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no link or button `{text}`: {e}"))
            .click()
            .await
            .unwrap();
        wait_for(
            &format!("the page after `{text}`"),
            Duration::from_secs(20),
            async || match old.tag_name().await {
                Err(_) => Ok(()),
                Ok(_) => Err("the old page is still there"),
            },
        )
        .await;
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// The visible text of the page's body.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .text()
            .await
            .unwrap()
    }

    pub async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits until the page's text contains `needle` (the page may reload by
    /// itself meanwhile; with `reload`, the test reloads it).
    pub async fn wait_text(&self, needle: &str, within: Duration, reload: bool) -> String {
        wait_for(
            &format!("the page to show `{needle}`"),
            within,
            async || {
                if reload {
                    self.client.refresh().await.unwrap();
                }
                let text = match self.client.find(Locator::Css("body")).await {
                    Ok(b) => b.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                if text.contains(needle) {
                    Ok(text)
                } else {
                    Err(format!("{}\n{text}", self.path().await))
                }
            },
        )
        .await
    }

    /// Saves a PNG of the window as `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}
