//! The OpenID Connect relying party: provider discovery (cached per issuer),
//! the authorization URL (code flow, PKCE S256, state, nonce), the code
//! exchange, ID token verification (signature via the provider's JWKS, exact
//! issuer, audience, expiry, nonce, access token hash), userinfo, and the
//! merged claims that come out of it. Also the pure rules a login applies to
//! those claims (allow-list, email, username) and the SQL of the login state
//! and of `user_links` for `oidc`.
//!
//! The HTTP handlers and the login transaction are in [`crate::api::oidc`].

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse as _, UserInfoClaims, reqwest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::authz::Write;
use crate::config::OidcConfig;
use crate::store::{self, Conn};

/// Claims as JSON: what the provider says about a user.
pub type Claims = Map<String, Value>;

/// The `source` of OIDC identities in `user_links`.
pub const LINK_SOURCE: &str = "oidc";

/// The callback route, relative to the access URL.
pub const CALLBACK_PATH: &str = "/api/v2/users/oidc/callback";

/// How long a login may take between `/login` and the callback.
pub const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// How long provider metadata (endpoints and signing keys) is reused.
const METADATA_TTL: Duration = Duration::from_secs(300);

/// Protocol claims of the ID token that say nothing about the user and change
/// at every login; they are not stored.
const PROTOCOL_CLAIMS: &[&str] = &[
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "azp",
    "sid",
    "jti",
];

/// Every claim beyond the standard ones (groups, roles, ...), as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: Claims,
}

impl AdditionalClaims for ExtraClaims {}

type IdTokenFields = openidconnect::IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<IdTokenFields, CoreTokenType>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unreachable ({step})")]
    Unreachable {
        step: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("the identity provider sent an invalid response ({step}): {message}")]
    BadResponse { step: &'static str, message: String },
    #[error("the identity provider refused the authorization code: {0}")]
    CodeRefused(String),
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("invalid OIDC setting: {0}")]
    Config(String),
    /// A claim holds text no database stores alike (NUL): the login is
    /// refused, naming the claim (`field` is `claims.NAME...`).
    #[error("the identity provider sent an invalid claim `{field}`: {detail}")]
    InvalidClaim { field: String, detail: String },
}

/// Where a login starts: the provider URL to send the browser to, and what the
/// callback needs to finish it.
#[derive(Debug)]
pub struct LoginStart {
    pub authorize_url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A verified identity: the subject and the merged claims (ID token, then
/// userinfo over it).
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub claims: Claims,
}

struct CachedMetadata {
    fetched: Instant,
    metadata: CoreProviderMetadata,
}

/// Provider metadata (with the JWKS) per issuer, shared by the servers of this
/// process.
static METADATA: LazyLock<Mutex<HashMap<String, CachedMetadata>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The HTTP client of every request to a provider. Redirects are never
/// followed (SSRF), requests time out.
static HTTP: LazyLock<Result<reqwest::Client, String>> = LazyLock::new(|| {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())
});

/// The relying party for one configuration.
pub struct RelyingParty<'a> {
    config: &'a OidcConfig,
    issuer: IssuerUrl,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
}

impl<'a> RelyingParty<'a> {
    /// `access_url` is this server's public URL; the redirect URI registered at
    /// the provider is `{access_url}/api/v2/users/oidc/callback`.
    pub fn new(config: &'a OidcConfig, access_url: &str) -> Result<Self, OidcError> {
        let issuer = IssuerUrl::new(config.issuer_url.clone())
            .map_err(|e| OidcError::Config(format!("issuer URL: {e}")))?;
        let redirect_uri = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            access_url.trim_end_matches('/')
        ))
        .map_err(|e| OidcError::Config(format!("access URL: {e}")))?;
        let http = HTTP.as_ref().map_err(|e| OidcError::Config(e.clone()))?;
        Ok(Self {
            config,
            issuer,
            redirect_uri,
            http: http.clone(),
        })
    }

    /// Provider metadata and keys: cached for a few minutes, or fetched (and
    /// the issuer checked for an exact match) when stale or `refresh`.
    async fn metadata(&self, refresh: bool) -> Result<(CoreProviderMetadata, bool), OidcError> {
        let key = self.issuer.as_str().to_owned();
        if !refresh
            && let Ok(cache) = METADATA.lock()
            && let Some(c) = cache.get(&key)
            && c.fetched.elapsed() < METADATA_TTL
        {
            return Ok((c.metadata.clone(), true));
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Request(
                    openidconnect::HttpClientError::Reqwest(source),
                ) => OidcError::Unreachable {
                    step: "discovery",
                    source: *source,
                },
                other => OidcError::BadResponse {
                    step: "discovery",
                    message: describe(&other),
                },
            })?;
        if let Ok(mut cache) = METADATA.lock() {
            cache.insert(
                key,
                CachedMetadata {
                    fetched: Instant::now(),
                    metadata: metadata.clone(),
                },
            );
        }
        Ok((metadata, false))
    }

    fn client(&self, metadata: CoreProviderMetadata) -> OidcClient {
        OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect_uri.clone())
    }

    /// The provider URL that starts a login: authorization code flow, PKCE
    /// S256, a random state and nonce.
    #[tracing::instrument(skip_all, err(level = "warn"), fields(issuer = %self.config.issuer_url))]
    pub async fn start(&self) -> Result<LoginStart, OidcError> {
        let (metadata, _) = self.metadata(false).await?;
        let client = self.client(metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        // `openid` is always sent first by the client.
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(LoginStart {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code (client authentication with the secret, PKCE
    /// verifier), verifies the ID token as of `now`, fetches userinfo and
    /// merges the claims (userinfo wins).
    #[tracing::instrument(skip_all, err(level = "warn"), fields(issuer = %self.config.issuer_url))]
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, OidcError> {
        let (metadata, cached) = self.metadata(false).await?;
        let client = self.client(metadata);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::BadResponse {
                step: "token",
                message: e.to_string(),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let nonce = Nonce::new(nonce.to_owned());
        let id_claims = match verify_id_token(&client, &token, &nonce, now) {
            // The provider may have rotated its keys since they were cached.
            Err(ClaimsVerificationError::SignatureVerification(_)) if cached => {
                let (metadata, _) = self.metadata(true).await?;
                verify_id_token(&self.client(metadata), &token, &nonce, now)
            }
            other => other,
        }
        .map_err(|e| OidcError::InvalidIdToken(describe(&e)))?;
        let subject = id_claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let userinfo = match client.user_info(
            token.access_token().clone(),
            Some(openidconnect::SubjectIdentifier::new(subject.clone())),
        ) {
            Ok(request) => {
                let claims: UserInfoClaims<ExtraClaims, CoreGenderClaim> = request
                    .request_async(&self.http)
                    .await
                    .map_err(|e| match e {
                        openidconnect::UserInfoError::Request(
                            openidconnect::HttpClientError::Reqwest(source),
                        ) => OidcError::Unreachable {
                            step: "userinfo",
                            source: *source,
                        },
                        other => OidcError::BadResponse {
                            step: "userinfo",
                            message: describe(&other),
                        },
                    })?;
                Some(to_claims(&claims))
            }
            // The provider has no userinfo endpoint: the ID token is all there is.
            Err(_) => None,
        };
        let claims = merge_claims(id_claims, userinfo);
        check_claims_text(&subject, &claims)?;
        Ok(Identity { subject, claims })
    }
}

/// Refuses claims with text no database stores alike (a NUL anywhere: the
/// subject, a claim name, a value at any depth), naming the first one found.
/// What a login stores (subject, email, username, name, group names, the
/// claims themselves) then never fails on PostgreSQL after SQLite took it.
pub fn check_claims_text(subject: &str, claims: &Claims) -> Result<(), OidcError> {
    use crate::api::extract::{invalid_json_text, invalid_text};
    let bad = invalid_text(subject)
        .map(|d| ("sub".to_owned(), d))
        .or_else(|| {
            claims.iter().find_map(|(k, v)| match invalid_text(k) {
                Some(d) => Some((k.clone(), d)),
                None => invalid_json_text(v, k),
            })
        });
    match bad {
        Some((field, detail)) => Err(OidcError::InvalidClaim {
            field: format!("claims.{}", field.replace('\0', "\\u0000")),
            detail: detail.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Verifies the ID token of a token response (signature, issuer, audience,
/// expiry as of `now`, nonce, access token hash) and returns its claims.
fn verify_id_token(
    client: &OidcClient,
    token: &OidcTokenResponse,
    nonce: &Nonce,
    now: DateTime<Utc>,
) -> Result<Claims, ClaimsVerificationError> {
    let id_token = token.id_token().ok_or_else(|| {
        ClaimsVerificationError::Other("the token response holds no ID token".to_owned())
    })?;
    let verifier = client.id_token_verifier().set_time_fn(move || now);
    let claims = id_token.claims(&verifier, nonce)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
            .map_err(|e| ClaimsVerificationError::Other(format!("access token hash: {e}")))?;
        if actual != *expected {
            return Err(ClaimsVerificationError::Other(
                "the access token hash (`at_hash`) does not match".to_owned(),
            ));
        }
    }
    Ok(to_claims(claims))
}

fn token_error(
    e: RequestTokenError<
        openidconnect::HttpClientError<reqwest::Error>,
        StandardErrorResponse<CoreErrorResponseType>,
    >,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let mut message = format!("`{}`", r.error().as_ref());
            if let Some(d) = r.error_description() {
                message.push_str(&format!(" ({d})"));
            }
            OidcError::CodeRefused(message)
        }
        RequestTokenError::Request(openidconnect::HttpClientError::Reqwest(source)) => {
            OidcError::Unreachable {
                step: "token",
                source: *source,
            }
        }
        other => OidcError::BadResponse {
            step: "token",
            message: describe(&other),
        },
    }
}

/// An error and its sources on one line.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn to_claims<T: Serialize>(v: &T) -> Claims {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Claims::new(),
    }
}

/// ID token claims without the protocol ones, then userinfo claims over them.
pub fn merge_claims(id_token: Claims, userinfo: Option<Claims>) -> Claims {
    let mut out: Claims = id_token
        .into_iter()
        .filter(|(k, _)| !PROTOCOL_CLAIMS.contains(&k.as_str()))
        .collect();
    if let Some(u) = userinfo {
        // The subject stays the ID token's (userinfo's was checked against it).
        out.extend(u.into_iter().filter(|(k, _)| k != "sub"));
    }
    out
}

/// `Ok` when the allow-list is empty or the user is in one of its groups,
/// else the refusal message.
pub fn check_allowed_groups(config: &OidcConfig, claims: &Claims) -> Result<(), String> {
    if config.allowed_groups.is_empty() {
        return Ok(());
    }
    let field = &config.allowed_groups_field;
    // The one claim parser, the same as IdP sync's.
    let groups = orgsync_sync::claim_values(claims, field).map_err(|e| e.to_string())?;
    if groups.iter().any(|g| config.allowed_groups.contains(g)) {
        Ok(())
    } else {
        Err(format!(
            "you are not a member of a group allowed to log in (claim `{field}`)"
        ))
    }
}

/// The email claim, if a non-empty string.
pub fn email(config: &OidcConfig, claims: &Claims) -> Option<String> {
    claims
        .get(&config.email_claim)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `email_verified` as the provider says it: `Some(true|false)`, or `None`
/// when absent (booleans sent as strings are accepted).
pub fn email_verified(claims: &Claims) -> Option<bool> {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A username from a claim value, normalized to the username rules: the local
/// part of an email, other characters than letters, digits, `-`, `_`, `.`
/// replaced by `-`, letters or digits at both ends, at most 64 characters;
/// `user` when nothing usable is left.
pub fn username_base(raw: &str) -> String {
    let raw = raw.trim();
    let raw = raw.split_once('@').map_or(raw, |(local, _)| local);
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed = trim_edges(&out, 64);
    if trimmed.is_empty()
        || trimmed.eq_ignore_ascii_case("me")
        || uuid::Uuid::parse_str(&trimmed).is_ok()
    {
        "user".to_owned()
    } else {
        trimmed
    }
}

/// At most `max` characters, starting and ending with a letter or digit.
fn trim_edges(s: &str, max: usize) -> String {
    let s: String = s.chars().take(max).collect();
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The `n`th candidate for a username (`n` = 1 is the base itself, then
/// `base-2`, `base-3`, ...), within 64 characters.
pub fn username_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    format!("{}{suffix}", trim_edges(base, 64 - suffix.len()))
}

pub use crate::store::oidc_states::StoredState;

/// Stores a login state (by the SHA-256 of `state`) and drops states older
/// than `cutoff`.
pub async fn insert_state(
    w: &mut Write<'_>,
    state: &str,
    s: &StoredState,
    cutoff: &str,
) -> sqlx::Result<()> {
    let hash = crate::secrets::sha256_hex(state);
    store::oidc_states::insert(w, &hash, s, cutoff).await
}

/// Takes a login state: deletes it and returns it, once. A second take of the
/// same state (a replay, or a racing request) finds nothing.
pub async fn take_state(w: &mut Write<'_>, state: &str) -> sqlx::Result<Option<StoredState>> {
    let hash = crate::secrets::sha256_hex(state);
    store::oidc_states::take(w, &hash).await
}

/// The user linked to an OIDC subject.
pub async fn linked_user(conn: &mut Conn, subject: &str) -> sqlx::Result<Option<String>> {
    store::links::user_of(conn, LINK_SOURCE, subject).await
}

/// The OIDC subject a user is linked to, if any.
pub async fn subject_of(conn: &mut Conn, user_id: &str) -> sqlx::Result<Option<String>> {
    store::links::external_id_of(conn, LINK_SOURCE, user_id).await
}

/// Creates the link of `subject` to `user_id`, or updates its stored claims.
pub async fn upsert_link(
    w: &mut Write<'_>,
    user_id: &str,
    subject: &str,
    claims: &Claims,
    now: &str,
) -> sqlx::Result<()> {
    let claims = Value::Object(claims.clone()).to_string();
    store::links::upsert_with_claims(w, user_id, LINK_SOURCE, subject, &claims, now).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => m,
            _ => Claims::new(),
        }
    }

    fn config(groups: &[&str]) -> OidcConfig {
        OidcConfig {
            issuer_url: "https://idp.example.com".into(),
            client_id: "c".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            username_claim: "preferred_username".into(),
            email_claim: "email".into(),
            allowed_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            allowed_groups_field: "groups".into(),
            post_login_redirect: "/".into(),
            ignore_email_verified: false,
        }
    }

    #[test]
    fn userinfo_wins_and_protocol_claims_go() {
        let merged = merge_claims(
            claims(
                json!({"sub": "s", "iss": "i", "exp": 1, "nonce": "n", "name": "id", "only_id": 1}),
            ),
            Some(claims(
                json!({"sub": "other", "name": "userinfo", "groups": ["a"]}),
            )),
        );
        assert_eq!(
            Value::Object(merged),
            json!({"sub": "s", "iss": "i", "name": "userinfo", "only_id": 1, "groups": ["a"]})
        );
    }

    #[test]
    fn claims_with_nul_are_refused_naming_the_claim() {
        let ok = claims(json!({"email": "a@example.com", "groups": ["eng"]}));
        assert!(check_claims_text("sub-1", &ok).is_ok());
        let bad = claims(json!({"email": "a@example.com", "groups": ["eng", "o\0ps"]}));
        assert!(matches!(
            check_claims_text("sub-1", &bad),
            Err(OidcError::InvalidClaim { field, .. }) if field == "claims.groups[1]"
        ));
        assert!(matches!(
            check_claims_text("s\0", &ok),
            Err(OidcError::InvalidClaim { field, .. }) if field == "claims.sub"
        ));
    }

    #[test]
    fn allowed_groups() {
        let c = claims(json!({"groups": ["eng", "ops"]}));
        assert!(check_allowed_groups(&config(&[]), &c).is_ok());
        assert!(check_allowed_groups(&config(&["ops"]), &c).is_ok());
        assert!(check_allowed_groups(&config(&["sales"]), &c).is_err());
        // The one claim parser: "" is no value, a comma-separated string is refused.
        let empty = claims(json!({"groups": ""}));
        assert!(check_allowed_groups(&config(&[""]), &empty).is_err());
        let commas = claims(json!({"groups": "eng,ops"}));
        assert!(
            check_allowed_groups(&config(&["eng"]), &commas).is_err_and(|e| e.contains("groups"))
        );
        assert!(check_allowed_groups(&config(&["sales"]), &Claims::new()).is_err());
    }

    #[test]
    fn emails_and_verification() {
        let c = claims(json!({"email": " a@example.com ", "email_verified": "true"}));
        assert_eq!(email(&config(&[]), &c).as_deref(), Some("a@example.com"));
        assert_eq!(email_verified(&c), Some(true));
        assert_eq!(
            email_verified(&claims(json!({"email_verified": false}))),
            Some(false)
        );
        assert_eq!(email_verified(&Claims::new()), None);
        assert_eq!(email(&config(&[]), &claims(json!({"email": ""}))), None);
    }

    #[test]
    fn usernames_are_normalized() {
        for (raw, want) in [
            ("alice", "alice"),
            ("Alice.Smith", "Alice.Smith"),
            ("alice@example.com", "alice"),
            ("Jean Dupont", "Jean-Dupont"),
            ("  -_weird__name!!  ", "weird__name"),
            ("élodie", "lodie"),
            ("", "user"),
            ("!!!", "user"),
            ("me", "user"),
            ("550e8400-e29b-41d4-a716-446655440000", "user"),
        ] {
            assert_eq!(username_base(raw), want, "{raw}");
            assert!(
                crate::model::Username::parse("u", &username_base(raw)).is_ok(),
                "{raw}"
            );
        }
        let long = "a".repeat(100);
        assert_eq!(username_base(&long).len(), 64);
        assert_eq!(username_candidate("bob", 1), "bob");
        assert_eq!(username_candidate("bob", 2), "bob-2");
        let c = username_candidate(&"b".repeat(64), 12);
        assert_eq!(c.len(), 64);
        assert!(c.ends_with("-12"));
        assert!(crate::model::Username::parse("u", &c).is_ok());
    }
}
