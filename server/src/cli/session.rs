//! `orgsync whoami` and `orgsync logout`: the stored login of the selected
//! profile (see `client`).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::client::{self, ApiClient, api_status, parse_url, url_text};
use super::output::{self, OutputArgs, cell, items};

/// `orgsync whoami`: the server, the user, its site roles and organizations.
pub fn whoami(out: OutputArgs) -> ExitCode {
    client::run_with_session(async move |api| {
        let me = api.get(&["users", "me"]).await?;
        let orgs = api.get(&["users", "me", "organizations"]).await?;
        let answer = json!({
            "url": url_text(api.base()),
            "profile": client::profile(),
            "user": me,
            "organizations": orgs,
        });
        out.show(&answer, || {
            let org_names: Vec<String> = items(&orgs).iter().map(|o| cell(o, "name")).collect();
            let org_names = if org_names.is_empty() {
                "-".to_owned()
            } else {
                org_names.join(", ")
            };
            output::fields(&[
                ("URL", url_text(api.base())),
                ("Profile", client::profile().to_owned()),
                ("Username", cell(&me, "username")),
                ("Email", cell(&me, "email")),
                ("Login type", cell(&me, "login_type")),
                ("Site roles", cell(&me, "roles")),
                ("Organizations", org_names),
                ("ID", cell(&me, "id")),
            ])
        })
    })
}

/// `orgsync logout`: revokes the profile's stored session on its server
/// (`POST /users/logout`) and removes it. When the server cannot be reached
/// (or refuses), the session is still forgotten here, and the command says
/// that the server did not revoke it.
pub fn logout(out: OutputArgs) -> ExitCode {
    client::run(async move {
        let Some(stored) = client::load_session()? else {
            eprintln!(
                "not logged in{}: nothing to log out of",
                client::profile_note()
            );
            return out.show(
                &json!({"profile": client::profile(), "logged_out": false, "revoked": false}),
                || Ok(()),
            );
        };
        let url = parse_url(&stored.url)?;
        let api = ApiClient::with_timeout(
            url.clone(),
            Some(stored.session_token),
            Duration::from_secs(10),
        )?;
        let server_error = match api.post(&["users", "logout"], None).await {
            Ok(_) => None,
            // Expired or revoked already: nothing is left to revoke.
            Err(e) if api_status(&e) == Some(401) => None,
            Err(e) => Some(format!("{e:#}")),
        };
        let path = client::session_path()?;
        client::remove_session()?;
        if let Some(error) = &server_error {
            eprintln!(
                "warning: the server did not revoke the session ({error}); it was removed here \
                 and expires on its own"
            );
        }
        if client::env_nonempty(client::ENV_TOKEN).is_some() {
            eprintln!(
                "note: {} is still set and still used by commands",
                client::ENV_TOKEN
            );
        }
        let answer = json!({
            "url": url_text(&url),
            "profile": client::profile(),
            "logged_out": true,
            "revoked": server_error.is_none(),
            "server_error": server_error.map_or(Value::Null, Value::from),
            "session_file": path.display().to_string(),
        });
        out.show(&answer, || {
            output::line(format!(
                "logged out of {} as `{}`{}",
                url_text(&url),
                stored.username,
                client::profile_note()
            ))
        })
    })
}
