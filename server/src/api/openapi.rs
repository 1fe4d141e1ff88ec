//! `GET /openapi.json`: the OpenAPI 3.1 document of `/api/v2`, generated from
//! the code. Every handler carries a `#[utoipa::path]` declaration (method,
//! path, query parameters, request body, success answers, summary, tag);
//! [`super::routes`] registers the handlers from those declarations, so the
//! router and the document are one list. [`document`] then adds what every
//! operation shares: the path parameters named by the path, the error answer
//! `{message, detail?, validations?}` for 4xx and 5xx, and the security
//! schemes (the session cookie, `Authorization: Bearer`, the provisioner key).

use std::sync::OnceLock;

use axum::Json;
use utoipa::OpenApi as _;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi, Ref, RefOr, Required};

use super::extract::SESSION_COOKIE;
use super::provisionerd::KEY_HEADER;

/// The security scheme of a session token or API token sent as
/// `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";
/// The security scheme of the `orgsync_session` cookie (browsers, the console).
pub const SESSION: &str = "session_cookie";
/// The security scheme of the provisioner daemon protocol (`/provisionerd/...`).
pub const PROVISIONER_KEY: &str = "provisioner_key";

/// The shared answer of every 4xx and 5xx (`components.responses`).
const ERROR_RESPONSE: &str = "Error";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "orgsync API",
        description = "The JSON API of orgsync under `/api/v2`. Requests are authenticated \
            with `Authorization: Bearer <token>` (a session token from `POST /users/login` or \
            an API token from `POST /users/{user}/keys/tokens`) or the `orgsync_session` \
            cookie; the provisioner daemon protocol (`/provisionerd/...`) with the \
            `Orgsync-Provisioner-Key` header. Every error answers \
            `{message, detail?, validations?: [{field, detail}]}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/api/v2", description = "This server")),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "users", description = "Users, sign-in, sessions and API tokens"), (name = "organizations", description = "Organizations"), (name = "members", description = "Organization members and their org roles"), (name = "groups", description = "Groups of an organization"),
        (name = "templates", description = "Template files, versions, templates and their ACLs"), (name = "provisioners", description = "Provisioner keys, daemons and jobs; the daemon protocol"), (name = "workspaces", description = "Workspaces and their builds"),
        (name = "idpsync", description = "IdP sync settings, preview and problems"), (name = "ldapsync", description = "LDAP directory sync settings and runs"),
        (name = "authorization", description = "Authorization checks and the policy set"), (name = "audit", description = "The audit log"), (name = "health", description = "Liveness, readiness, build info and this document"),
    )
)]
struct Base;

/// The document's fixed parts (info, servers, tags, shared schemas), before
/// [`super::routes`] adds the operations.
pub fn base() -> OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The document, built once from [`super::routes`].
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = super::routes().split_for_parts();
        complete(doc)
    })
}

/// The OpenAPI 3.1 document of this API (what you are reading).
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()), responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn serve() -> Json<&'static OpenApi> {
    Json(document())
}

// ---- The shapes of answers the use cases build as JSON values ----
//
// These types only describe those answers in the document (the use cases
// return `serde_json::Value`); the e2e tests check the fields they name.

/// `GET /users/{user}/roles`.
#[derive(utoipa::ToSchema)]
pub struct UserRoles {
    /// Site roles; `member` is implicit and always listed.
    pub roles: Vec<String>,
    /// Org roles by organization id.
    pub organization_roles: std::collections::BTreeMap<String, Vec<String>>,
}

/// `POST /organizations/{organization}/provisionerkeys`: the key and its
/// secret, shown once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProvisionerKeyCreated {
    #[serde(flatten)]
    pub provisioner_key: crate::usecase::provisioners::ProvisionerKey,
    /// The secret to give the daemon (`Orgsync-Provisioner-Key`).
    pub key: String,
}

/// `POST /provisionerjobs/{id}/cancel`.
#[derive(utoipa::ToSchema)]
pub struct JobCanceled {
    pub id: String,
    pub status: crate::provisioner::JobStatus,
}

/// `POST /provisionerd/register`.
#[derive(utoipa::ToSchema)]
pub struct DaemonRegistered {
    /// The daemon's id, in the paths of its next calls.
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    /// The tags the key gives the daemon.
    pub tags: std::collections::BTreeMap<String, String>,
}

/// `GET /workspaces`.
#[derive(utoipa::ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<crate::usecase::workspaces::Workspace>,
    pub count: i64,
}

/// `GET /audit`.
#[derive(utoipa::ToSchema)]
pub struct AuditLog {
    /// Entries, newest first, with the names of the users and organizations
    /// they refer to.
    pub audit_logs: Vec<Object>,
    pub count: i64,
}

/// `POST /authorize`: one decision per request, in order.
#[derive(utoipa::ToSchema)]
pub struct AuthorizeResults {
    pub results: Vec<Decision>,
}

/// One decision of `POST /authorize`.
#[derive(utoipa::ToSchema)]
pub struct Decision {
    /// `allow` or `deny`.
    pub decision: String,
    /// The ids of the policies that decided.
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

/// `GET /policies`.
#[derive(utoipa::ToSchema)]
pub struct PolicySet {
    pub hash: String,
    /// Where the policies were loaded from.
    pub origin: String,
    /// The policies: id, file, effect, action scope.
    pub policies: Vec<Object>,
}

/// `POST /policies/reload`.
#[derive(utoipa::ToSchema)]
pub struct PoliciesReloaded {
    pub hash: String,
    /// How many policies the set holds.
    pub policies: i64,
    /// Decisions on the current data that the new set turns from deny to allow.
    pub granted: i64,
    /// Decisions it turns from allow to deny.
    pub revoked: i64,
    /// Whether the new set grants anything the old one did not.
    pub grants_more: bool,
}

/// `POST /policies/impact`: every decision the proposed set would change.
#[derive(utoipa::ToSchema)]
pub struct PolicyImpact {
    pub before: Object,
    pub after: Object,
    pub users: i64,
    pub actions: i64,
    /// Decisions evaluated by each set.
    pub decisions: i64,
    pub changed: i64,
    pub granted: i64,
    pub revoked: i64,
    /// `{action, role, before, after, policies_before, policies_after, count, examples}`.
    pub groups: Vec<Object>,
    /// `{resources_per_kind, sampled: [{organization_id, kind, total, evaluated}]}`.
    pub sample: Object,
}

/// `GET /idpsync/problems`.
#[derive(utoipa::ToSchema)]
pub struct Problems {
    pub problems: Vec<Object>,
}

/// Any JSON object.
type Object = serde_json::Map<String, serde_json::Value>;

/// What every operation shares, added to the declared ones.
fn complete(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A session token (`POST /users/login`) or an API token \
                     (`POST /users/{user}/keys/tokens`)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie set by a login; writes must be same-origin",
        ))),
    );
    components.add_security_scheme(
        PROVISIONER_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Orgsync-Provisioner-Key",
            "A provisioner key of the daemon's organization",
        ))),
    );
    debug_assert!(KEY_HEADER.eq_ignore_ascii_case("Orgsync-Provisioner-Key"));
    components.responses.insert(
        ERROR_RESPONSE.to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description("An error: `{message, detail?, validations?}`")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        ),
    );
    doc.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::new(SESSION, Vec::<String>::new()),
    ]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let names = path_parameters(path);
        for (method, op) in operations(item) {
            // Handlers of different modules share names (`list`, `get`):
            // the method and the path name an operation uniquely.
            op.operation_id = Some(operation_id(method, path));
            add_path_parameters(op, &names);
            for range in ["4XX", "5XX"] {
                op.responses
                    .responses
                    .entry(range.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE)));
            }
        }
    }
    doc
}

/// The operations of a path with their methods.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

/// `get_users_user_links` for `GET /users/{user}/links`.
fn operation_id(method: &str, path: &str) -> String {
    let words = path
        .split(['/', '-', '.', '{', '}'])
        .filter(|w| !w.is_empty());
    std::iter::once(method)
        .chain(words)
        .collect::<Vec<_>>()
        .join("_")
}

/// The `{name}` segments of a route.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// What a path parameter accepts, by its name in the routes.
fn describe(name: &str) -> &'static str {
    match name {
        "user" => "A user: its id, its username, or `me` for the caller",
        "organization" => "An organization: its id or its name",
        "name" => "The provisioner key's name",
        "daemon" => "The daemon's id (from `POST /provisionerd/register`)",
        "job" => "The job's id",
        _ => "The id",
    }
}

/// Declares each path parameter an operation does not declare itself (a
/// required string described by [`describe`]), and puts the others in the
/// query.
fn add_path_parameters(op: &mut Operation, names: &[&str]) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    // A query type's `IntoParams` says no location (the default is the
    // path): a parameter the path does not name is in the query.
    for p in params.iter_mut() {
        if p.parameter_in == ParameterIn::Path && !names.contains(&p.name.as_str()) {
            p.parameter_in = ParameterIn::Query;
        }
    }
    for name in names.iter().rev() {
        let declared = params
            .iter()
            .any(|p| p.name == *name && p.parameter_in == ParameterIn::Path);
        if !declared {
            params.insert(
                0,
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some(describe(name)))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            );
        }
    }
    if params.is_empty() {
        op.parameters = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    /// The text of `fn name` in `source`, up to the next top-level item.
    fn function<'a>(source: &'a str, name: &str) -> &'a str {
        let start = source
            .find(&format!("pub fn {name}("))
            .unwrap_or_else(|| panic!("no `fn {name}` in api/mod.rs"));
        let rest = &source[start..];
        let end = rest.find("\n}\n").unwrap_or(rest.len());
        &rest[..end]
    }

    /// Every route of `/api/v2` is declared in `api::routes` through
    /// `routes!`, which takes its method and path from the handler's
    /// `#[utoipa::path]`: a route added any other way (`.route`, `.nest`,
    /// `.merge`, a service) would be served and missing from the document.
    /// The router is built from the same `routes()` (`api::router` adds only
    /// layers and fallbacks before nesting it under `/api/v2`; what it serves
    /// at the root, `/healthz`, `/readyz`, `/metrics`, is outside `/api/v2`).
    #[test]
    fn every_route_comes_from_a_documented_handler() {
        let source = include_str!("mod.rs");
        let routes = function(source, "routes");
        let router = function(source, "router");
        // The API's router: split from `routes()`, given its layers and
        // fallbacks in one statement, nested under `/api/v2` as it is.
        let split = "let (api, _) = routes().split_for_parts();";
        let start = router
            .find(split)
            .expect("the router is split from routes()");
        let statement = &router[start + split.len()..];
        let api = &statement[..statement.find(';').expect("one statement")];
        assert!(api.trim_start().starts_with("let api = api"), "{api}");
        assert!(router.contains(".nest(\"/api/v2\", api)"), "{router}");
        for (what, text) in [("routes()", routes), ("the API's router", api)] {
            for undocumented in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".merge(",
                ".fallback_service(",
            ] {
                assert!(
                    !text.contains(undocumented),
                    "{what} adds a route with `{undocumented}`: declare it with \
                     #[utoipa::path] and register it with `routes!`"
                );
            }
        }
        // Each handler named in `routes!` is one operation of the document.
        let handlers: usize = routes
            .split("routes!(")
            .skip(1)
            .map(|group| {
                let group = &group[..group.find(')').unwrap()];
                group.split(',').filter(|h| !h.trim().is_empty()).count()
            })
            .sum();
        let mut doc = document().clone();
        let operations: usize = doc
            .paths
            .paths
            .values_mut()
            .map(|item| operations(item).count())
            .sum();
        assert_eq!(handlers, operations);
        assert!(operations > 90, "{operations} operations");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_summaries_tags_and_answers() {
        let doc = json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let declared: BTreeSet<&str> = path_parameters(path).into_iter().collect();
            for (method, op) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(ids.insert(id.to_owned()), "{at}: operationId {id} twice");
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(!summary.trim().is_empty(), "{at}: no summary");
                let op_tags = op["tags"].as_array().expect("tags");
                assert_eq!(op_tags.len(), 1, "{at}: {op_tags:?}");
                assert!(tags.contains(op_tags[0].as_str().unwrap()), "{at}");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2') || k == "302"),
                    "{at}: no success answer"
                );
                assert_eq!(
                    op["responses"]["4XX"]["$ref"], "#/components/responses/Error",
                    "{at}"
                );
                let in_path: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(in_path, declared, "{at}: path parameters");
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(p["schema"].is_object(), "{at}: {p}");
                }
            }
        }
    }

    /// Every `$ref` names a component that exists.
    #[test]
    fn every_reference_resolves() {
        fn walk<'a>(v: &'a Value, refs: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r);
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = json();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 50);
        for r in refs {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn the_security_schemes_are_those_the_server_accepts() {
        let doc = json();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[BEARER]["type"], "http");
        assert_eq!(schemes[SESSION]["name"], SESSION_COOKIE);
        assert!(
            schemes[PROVISIONER_KEY]["name"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(KEY_HEADER)
        );
        // Signed-in by default; the login routes and health are public; the
        // daemon protocol takes the provisioner key.
        assert_eq!(doc["security"].as_array().unwrap().len(), 2);
        assert_eq!(
            doc["paths"]["/users/login"]["post"]["security"][0],
            serde_json::json!({})
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            if path.starts_with("/provisionerd/") {
                for op in item.as_object().unwrap().values() {
                    assert!(op["security"][0].get(PROVISIONER_KEY).is_some(), "{path}");
                }
            }
        }
    }
}
