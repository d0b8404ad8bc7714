//! A real OpenID provider for the single sign-on tests: panva's `oidc-provider` (certified by
//! the OpenID Foundation), installed by `.ci/run` into `.ci/node/node_modules`, run by
//! `.ci/node/oidc-provider.mjs` with node on `127.0.0.1` and a port the system picks, with
//! one confidential client registered. [`OidcProvider::authorize`] plays the browser at the
//! provider: it follows the redirects and submits the provider's own login and consent forms
//! until the provider sends the browser back to the client's redirect URI.
//!
//! [`OidcProvider::tamper`] turns on the script's man-in-the-middle of the token endpoint
//! (see the script for the modes).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::http_request;

/// A running provider; stopped on drop.
#[derive(Debug)]
pub struct OidcProvider {
    /// Its issuer identifier (`http://127.0.0.1:PORT`).
    pub issuer: String,
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).join(".ci/node")
}

/// One account at the provider: its subject (typed as the login name) and e-mail address.
#[derive(Debug, Clone)]
pub struct Account {
    /// `sub`.
    pub subject: String,
    /// `email`.
    pub email: String,
}

impl OidcProvider {
    /// Starts a provider with one client (`client_id`, `client_secret`, `redirect_uri`) and
    /// these accounts. `Err` when node or the package is missing (for [`crate::require`]).
    pub fn start(
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        accounts: &[Account],
    ) -> Result<OidcProvider, String> {
        let dir = node_dir();
        if !dir.join("node_modules/oidc-provider/package.json").is_file() {
            return Err(format!(
                "{}/node_modules/oidc-provider is missing (run `npm ci --prefix .ci/node`)",
                dir.display()
            ));
        }
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let accounts: serde_json::Map<String, serde_json::Value> =
            accounts.iter().map(|a| (a.subject.clone(), serde_json::json!({ "email": a.email }))).collect();
        let config = serde_json::json!({
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": [redirect_uri],
            "accounts": accounts,
        });
        let config_path = scratch.path().join("provider.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let mut child = Command::new("node")
            .arg(dir.join("oidc-provider.mjs"))
            .arg(&config_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("node: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (sender, receiver) = std::sync::mpsc::channel();
        // The first line names the issuer; the rest is read and dropped until the process
        // ends (a closed pipe would kill it at its next write).
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if !line.trim().is_empty() => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the provider did not start within 30 s".into());
            }
        };
        let issuer = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["issuer"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        let addr = issuer.trim_start_matches("http://").parse::<SocketAddr>().map_err(|e| e.to_string())?;
        Ok(OidcProvider { issuer, addr, child, _dir: scratch })
    }

    /// Turns the token endpoint's man-in-the-middle on (`signature`, `claim`, `none`,
    /// `nonce`, `aud`, `iss`, `expired`, `azp`, `mfa`, `rotate`, `discovery`) or `off`.
    pub fn tamper(&self, mode: &str) {
        let answer = http_request(self.addr, "POST", "/__test/tamper", &[], mode.as_bytes());
        assert_eq!(answer.status, 200, "the provider took the tamper mode");
    }

    /// Plays the browser: opens `authorization_url`, signs in as `subject` with the
    /// provider's login form, consents with its consent form, and returns the URL the
    /// provider sends the browser back to (the client's redirect URI with `code` and
    /// `state`), without opening it.
    pub fn authorize(&self, authorization_url: &str, subject: &str) -> Result<String, String> {
        let prefix = format!("{}/", self.issuer);
        let mut url = authorization_url.to_owned();
        let mut cookies: BTreeMap<String, String> = BTreeMap::new();
        let mut form: Option<(String, String)> = None;
        for _ in 0..20 {
            let path = match url.strip_prefix(&prefix) {
                Some(rest) => format!("/{rest}"),
                None if url.starts_with('/') => url.clone(),
                None => return Ok(url),
            };
            let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let mut headers = vec![("Cookie", cookie.as_str())];
            let answer = match form.take() {
                Some((action, body)) => {
                    headers.push(("Content-Type", "application/x-www-form-urlencoded"));
                    http_request(self.addr, "POST", &action, &headers, body.as_bytes())
                }
                None => http_request(self.addr, "GET", &path, &headers, b""),
            };
            for (name, value) in &answer.headers {
                if name == "set-cookie"
                    && let Some((pair, _)) = value.split_once(';').or(Some((value.as_str(), "")))
                    && let Some((k, v)) = pair.split_once('=')
                {
                    if v.is_empty() {
                        cookies.remove(k.trim());
                    } else {
                        cookies.insert(k.trim().to_owned(), v.trim().to_owned());
                    }
                }
            }
            match answer.status {
                302 | 303 => {
                    url = answer.header("location").ok_or("a redirect without Location")?.to_owned();
                }
                200 => {
                    let body = &answer.body;
                    let action = body
                        .split("action=\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .ok_or_else(|| format!("no form on the provider's page: {body}"))?
                        .replace("&amp;", "&");
                    let action = action.strip_prefix(&self.issuer).unwrap_or(&action).to_owned();
                    let fields = if body.contains("value=\"login\"") {
                        format!("prompt=login&login={}&password=anything", urlencode(subject))
                    } else if body.contains("value=\"consent\"") {
                        "prompt=consent".to_owned()
                    } else {
                        return Err(format!("an unexpected page at the provider: {body}"));
                    };
                    form = Some((action, fields));
                    url = path;
                }
                status => return Err(format!("the provider answered {status}: {}", answer.body)),
            }
        }
        Err("too many steps at the provider".into())
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
