//! The committed `crates/api/openapi.json` is the document the code generates. Regenerate it
//! with `SEALWATCH_UPDATE_OPENAPI=1 cargo nextest run -p sealwatch-api --test openapi`.

#[test]
fn committed_openapi_document_is_current() {
    let generated = sealwatch_api::openapi_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("SEALWATCH_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "crates/api/openapi.json is stale; regenerate it with \
         SEALWATCH_UPDATE_OPENAPI=1 cargo nextest run -p sealwatch-api --test openapi"
    );
}

#[test]
fn every_operation_is_documented_with_problem_errors() {
    let doc: serde_json::Value =
        serde_json::from_str(&sealwatch_api::openapi_json()).expect("valid JSON");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v1/anomalies/{anomaly_id}/review"));
    assert!(paths.contains_key("/api/v1/tenants/{tenant_id}/domains"));
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            let mut unique = params.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                params.len(),
                "{method} {path}: duplicate parameters"
            );
            if op.get("security").is_some() {
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} needs a token but documents no 401"
                );
            }
        }
    }
}
