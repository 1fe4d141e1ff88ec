//! `GET /api/v2/openapi.json`: the OpenAPI 3.1 document of the API, served
//! without authentication, checked against the real router of a running
//! server: every documented path answers each documented method (no 405, not
//! the "route not found" of the fallback) and refuses every other method with
//! 405, so the document lists exactly the methods the router serves on its
//! paths. (That the router serves no path the document misses is checked on
//! the source by the unit tests of `server/src/api/openapi.rs`: every route is
//! declared through `routes!`.)

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::TestServer;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The document as an anonymous client gets it.
async fn document(s: &TestServer) -> Value {
    let (status, doc) = s.client().get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

/// A request to a path of the document with each `{name}` filled in.
async fn probe(s: &TestServer, method: &str, path: &str) -> (StatusCode, Value) {
    let concrete: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                format!("probe-{}", seg.trim_matches(['{', '}']))
            } else {
                seg.to_owned()
            }
        })
        .collect();
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    s.client().send(method, &concrete.join("/"), None).await
}

fn unrouted(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["message"] == "route not found")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_public() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], "/api/v2");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "orgsync_session");
    assert_eq!(schemes["provisioner_key"]["in"], "header");
    // The error shape every operation answers for 4xx.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["message"]));
    for field in ["message", "detail", "validations"] {
        assert!(error["properties"].get(field).is_some(), "{error}");
    }
    // A few operations in detail: bodies and answers are the real types.
    let users = &doc["paths"]["/users"];
    assert_eq!(users["get"]["tags"][0], "users");
    assert_eq!(
        users["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UserList"
    );
    assert_eq!(
        users["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewUser"
    );
    assert_eq!(
        users["post"]["responses"]["4XX"]["$ref"],
        "#/components/responses/Error"
    );
    let daemon = &doc["paths"]["/provisionerd/{daemon}/jobs/{job}/complete"]["post"];
    assert_eq!(
        daemon["security"][0]["provisioner_key"],
        serde_json::json!([])
    );
    let names: Vec<&str> = daemon["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["daemon", "job"]);
    // Public without authentication, and no cache keeps it.
    let resp = reqwest::get(format!("{}/api/v2/openapi.json", s.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_methods() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 50, "{} paths", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        for method in METHODS {
            let (status, body) = probe(&s, method, path).await;
            if item.get(method).is_some() {
                operations += 1;
                assert!(
                    !unrouted(status, &body),
                    "{method} {path} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented: {body}"
                );
            }
        }
    }
    // The probe itself can tell: a path the router does not serve is the
    // fallback's 404, a method it does not serve on a path is 405.
    let (status, body) = probe(&s, "get", "/no/such/route").await;
    assert!(unrouted(status, &body), "{status} {body}");
    let (status, body) = probe(&s, "delete", "/healthz").await;
    assert!(unrouted(status, &body), "{status} {body}");
    assert!(operations >= paths.len());
}
