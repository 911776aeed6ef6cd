//! The OpenAPI 3.1 document served at `/v1/openapi.json`.
//!
//! Written by hand as JSON rather than generated: the API is small, its bodies are a
//! few shapes, and a derive-based generator would annotate every handler and body type
//! for what one function states. `tests/admin.rs` checks the document against the live
//! router (every documented route answers, nothing undocumented does), and schemathesis
//! checks every answer against these schemas.
//!
//! Must not touch: request handling.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let problem = json!({"$ref": "#/components/responses/Problem"});
    let e164 = json!({"name": "e164", "in": "path", "required": true,
        "description": "'+' and digits (%2B or a literal '+')",
        "schema": {"type": "string", "pattern": "^\\+[0-9]{1,20}$"}});
    let e164prefix = json!({"name": "e164prefix", "in": "path", "required": true,
        "description": "'+' and the digits every covered number starts with (%2B or a literal '+')",
        "schema": {"type": "string", "pattern": "^\\+[0-9]{1,20}$"}});
    // The query of both lists.
    let paging = json!([
        {"name": "prefix", "in": "query", "description": "only items starting with these digits ('+' alone: all)",
            "schema": {"type": "string", "pattern": "^[+ ][0-9]{0,20}$"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "after", "in": "query", "description": "the previous page's 'next' (exclusive)",
            "schema": {"type": "string", "pattern": "^[+ ][0-9]{1,20}$"}}
    ]);
    let json_body = |schema: &str| json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let ok = |schema: &str| json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let errors = |codes: &[&str]| {
        let mut m = serde_json::Map::new();
        for c in codes {
            m.insert((*c).to_string(), problem.clone());
        }
        m
    };
    let with = |mut base: serde_json::Map<String, Value>, code: &str, v: Value| {
        base.insert(code.to_string(), v);
        Value::Object(base)
    };
    let no_content = json!({"description": "Done"});
    // PUT /v1/zones/{origin} creating a zone: 201, where to find it, the same body.
    let created_or = |mut base: serde_json::Map<String, Value>| {
        base.insert("201".into(), json!({"description": "Created",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ZoneReplaced"}}}}));
        base
    };
    let warnings = json!({"type": "array", "items": {"type": "string"},
        "description": "routes kept that calls never use: their service (given explicitly) is not in enum.services, e.g. 'routes[0].service: E2U+web:https is not in enum.services: kept in the zone for other ENUM clients, never used to route calls' (imports: 'line N: …')"});
    // A number or prefix route as answered, keys in this order.
    let view = |key: &str| {
        json!({"type": "object", "required": [key, "zone", "ttl", "routes", "naptr"], "properties": {
            key: {"type": "string"}, "zone": {"type": "string"}, "ttl": {"type": "integer"},
            "routes": {"type": "array", "items": {"$ref": "#/components/schemas/Route"}},
            "naptr": {"type": "array", "items": {"type": "string"}, "description": "the records in presentation format"},
            "warnings": warnings.clone()
        }})
    };
    let list = |item: &str| {
        json!({"type": "object", "required": ["items", "next"], "properties": {
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next": {"type": ["string", "null"], "description": "pass as 'after' for the next page"}
        }})
    };
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "enroute admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Numbers, prefix routes, bulk import, zones and routing decisions of an enroute ENUM/SIP routing service. Every 2xx to a change means it is committed to disk and already served by SIP, DNS and routing."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"operationId": "healthz", "security": [],
                "responses": {"200": {"description": "The process is up", "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}}}},
            "/readyz": {"get": {"operationId": "readyz", "security": [],
                "responses": {"200": {"description": "Every zone is loaded and every listener is up", "content": {"application/json": {"schema": {"type": "object", "required": ["status", "zones"], "properties": {"status": {"const": "ready"}, "zones": {"type": "integer", "minimum": 0}}}}}}, "503": problem}}},
            "/v1/numbers/{e164}": {
                "parameters": [e164],
                "get": {"operationId": "getNumber", "responses": with(errors(&["401", "404", "422"]), "200", ok("NumberView"))},
                "put": {"operationId": "putNumber", "requestBody": json_body("NumberBody"),
                    "responses": with(errors(&["401", "409", "413", "415", "422"]), "200", ok("NumberView"))},
                "delete": {"operationId": "deleteNumber", "responses": with(errors(&["401", "404", "409", "422"]), "204", no_content.clone())}
            },
            "/v1/numbers": {"get": {"operationId": "listNumbers", "parameters": paging.clone(),
                "responses": with(errors(&["401", "422"]), "200", ok("NumberList"))}},
            "/v1/numbers:import": {"post": {"operationId": "importNumbers",
                "description": "Sets and deletes numbers in one change, all or nothing; the body is read as a stream (no size limit). CSV: an empty uri as a number's only row deletes it. NDJSON: {\"number\": \"+…\", \"delete\": true} deletes it.",
                "parameters": [
                    {"name": "mode", "in": "query", "required": false, "description": "merge (default): other numbers stay; replace: the zone named by `zone` ends up with exactly the upload's numbers", "schema": {"enum": ["merge", "replace"]}},
                    {"name": "zone", "in": "query", "required": false, "description": "the origin of the zone the upload is for (every number must fall in it); needed with mode=replace: the zone whose numbers are replaced", "schema": {"type": "string"}}
                ],
                "requestBody": {"required": true, "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}}
                }},
                "responses": with(errors(&["400", "401", "408", "409", "413", "415", "422"]), "200", ok("ImportResult"))}},
            "/v1/prefixes": {"get": {"operationId": "listPrefixes", "parameters": paging,
                "responses": with(errors(&["401", "422"]), "200", ok("PrefixList"))}},
            "/v1/prefixes/{e164prefix}": {
                "parameters": [e164prefix],
                "get": {"operationId": "getPrefix", "responses": with(errors(&["401", "404", "422"]), "200", ok("PrefixView"))},
                "put": {"operationId": "putPrefix", "requestBody": json_body("NumberBody"),
                    "responses": with(errors(&["401", "409", "413", "415", "422"]), "200", ok("PrefixView"))},
                "delete": {"operationId": "deletePrefix", "responses": with(errors(&["401", "404", "409", "422"]), "204", no_content.clone())}
            },
            "/v1/route/{number}": {"get": {"operationId": "route",
                "parameters": [{"name": "number", "in": "path", "required": true, "description": "a number as dialled, or a sip:, sips: or tel: URI", "schema": {"type": "string", "minLength": 1}}],
                "responses": with(errors(&["400", "401"]), "200", ok("Decision"))}},
            "/v1/zones": {"get": {"operationId": "listZones", "responses": with(errors(&["401"]), "200", ok("ZoneList"))}},
            "/v1/zones/{origin}": {
                "parameters": [{"name": "origin", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"operationId": "exportZone", "responses": with(errors(&["401", "404", "422"]), "200",
                    json!({"description": "The zone as served, as an RFC 1035 master file", "content": {"text/dns": {"schema": {"type": "string"}}}}))},
                "put": {"operationId": "putZone",
                    "description": "Replaces the zone (200; serial max(uploaded, current + 1)), or creates it when no zone of that origin is served (201; served at once, after restarts, and listed in the catalog zone). Secondary zones and the catalog zone are 409.",
                    "requestBody": {"required": true, "content": {"text/dns": {"schema": {"type": "string"}}}},
                    "responses": with(created_or(errors(&["401", "409", "413", "415", "422"])), "200", ok("ZoneReplaced"))},
                "delete": {"operationId": "deleteZone",
                    "description": "Deletes a zone created through the API: its records and journal, and it is no longer served nor in the catalog zone. A zone configured in [[zone]] (with a file or store-only), a secondary zone or the catalog zone is 409.",
                    "responses": with(errors(&["401", "404", "409", "422"]), "204", no_content.clone())}
            },
            "/v1/cache": {"delete": {"operationId": "flushCache", "responses": with(errors(&["401"]), "204", no_content.clone())}},
            "/v1/cache/{e164}": {"parameters": [e164], "delete": {"operationId": "flushCachedNumber", "responses": with(errors(&["401", "422"]), "204", no_content)}},
            "/v1/openapi.json": {"get": {"operationId": "openapi", "security": [],
                "responses": {"200": {"description": "This document (no token needed: it holds no data)", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Problem": {"description": "RFC 9457 problem details", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "required": ["field", "detail"], "properties": {
                        "line": {"type": "integer", "minimum": 0}, "field": {"type": "string"}, "detail": {"type": "string"}}}},
                    "total_errors": {"type": "integer"}
                }},
                "Route": {"type": "object", "additionalProperties": false,
                    "description": "Exactly one of uri, pstn and regexp.",
                    "properties": {
                        "uri": {"type": "string", "description": "sip:, sips:, tel: or another URI; service defaults from the scheme"},
                        "pstn": {"type": "boolean", "description": "to the PSTN: tel:<number> through the gateways"},
                        "rn": {"type": "string", "description": "routing number (RFC 4694), with pstn"},
                        "npdi": {"type": "boolean", "description": "number portability dip done (RFC 4694), with pstn"},
                        "regexp": {"type": "string", "description": "an RFC 3402 substitution expression, kept byte for byte"},
                        "flags": {"type": "string", "default": "u", "description": "\"u\" (terminal) or \"\" (non-terminal); any other flags are refused (422 naming routes[i].flags): calls would never use the route"},
                        "service": {"type": "string", "description": "e.g. E2U+sip. A route whose service is not in enum.services is refused (422 naming routes[i].uri or routes[i].pstn, where the service came from) unless service is given: then it is kept in the zone for other ENUM clients, never used to route calls, and the answer carries a warning. A route whose result the service does not take (E2U+sip and E2U+pstn:sip take sip: or sips: URIs, E2U+pstn:tel tel: URIs; pstn routes give tel:, a regexp's result is judged when it has no back-reference) is refused whatever service says (422 naming routes[i].uri, routes[i].pstn or routes[i].regexp)"},
                        "order": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 100},
                        "preference": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 10}
                    }},
                "NumberBody": {"type": "object", "additionalProperties": false, "required": ["routes"], "properties": {
                    "number": {"type": "string", "description": "optional; must match the path"},
                    "zone": {"readOnly": true, "description": "ignored (answers carry it)"},
                    "naptr": {"readOnly": true, "description": "ignored (answers carry it)"},
                    "prefix": {"readOnly": true, "description": "ignored (answers carry it)"},
                    "warnings": {"readOnly": true, "description": "ignored (answers carry it)"},
                    "ttl": {"type": "integer", "minimum": 0, "maximum": 2147483647, "default": 300},
                    "routes": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"$ref": "#/components/schemas/Route"}}
                }},
                "NumberView": view("number"),
                "PrefixView": view("prefix"),
                "NumberList": list("NumberView"),
                "PrefixList": list("PrefixView"),
                "ImportResult": {"type": "object", "required": ["numbers", "routes", "deleted"], "properties": {
                    "numbers": {"type": "integer"}, "routes": {"type": "integer"},
                    "deleted": {"type": "integer", "description": "numbers deleted: by delete lines, or left out of a replace"},
                    "warnings": warnings.clone(),
                    "total_warnings": {"type": "integer", "description": "how many warnings in all (at most 100 are listed)"}}},
                "ZoneList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
                    "type": "object", "required": ["origin", "serial", "records", "type", "last_transfer_in", "last_transfer_out"], "properties": {
                        "origin": {"type": "string"}, "serial": {"type": "integer"}, "records": {"type": "integer"},
                        "type": {"enum": ["primary", "secondary", "catalog"]},
                        "last_transfer_in": {"description": "the last transfer received from the zone's primary since start (secondary zones)", "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Transfer"}]},
                        "last_transfer_out": {"description": "the last transfer answered to a secondary since start", "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Transfer"}]}}}}}},
                "Transfer": {"type": "object", "required": ["type", "result", "serial", "peer", "at"], "properties": {
                    "type": {"enum": ["axfr", "ixfr"], "description": "the form that went over the wire"},
                    "result": {"enum": ["ok", "failed"]},
                    "serial": {"type": "integer", "description": "the serial it carried (asked for, when an inbound one failed)"},
                    "peer": {"type": ["string", "null"], "description": "the secondary that asked, or the primary asked (address:port)"},
                    "at": {"type": "string", "format": "date-time", "description": "when it ended (UTC)"}}},
                "ZoneReplaced": {"type": "object", "required": ["origin", "serial", "records"], "properties": {
                    "origin": {"type": "string"}, "serial": {"type": "integer"}, "records": {"type": "integer"}}},
                "Decision": {"type": "object",
                    "required": ["input", "number", "status", "reason", "contacts", "source", "zone", "suffix", "ttl", "trace"],
                    "properties": {
                        "input": {"type": "string"},
                        "number": {"type": ["string", "null"]},
                        "status": {"type": "integer"},
                        "reason": {"type": "string"},
                        "detail": {"type": "string"},
                        "contacts": {"type": "array", "items": {"type": "object", "required": ["uri", "q"], "properties": {
                            "uri": {"type": "string"}, "q": {"type": ["string", "number"]}}}},
                        "source": {"enum": ["local", "cache", "upstream", "gateway", "none"]},
                        "zone": {"type": ["string", "null"]},
                        "suffix": {"type": ["string", "null"]},
                        "ttl": {"type": "integer"},
                        "trace": {"type": "array", "items": {"type": "object"}}
                    }}
            }
        }
    });
    add_registrar(&mut doc, &problem);
    doc
}

/// The registrar's paths and schemas (SPEC §11): users and registrations. Every one
/// answers 404 while `registrar.enabled` is false.
fn add_registrar(doc: &mut Value, problem: &Value) {
    let errors = |codes: &[&str], ok_code: &str, ok: Value| {
        let mut m = serde_json::Map::new();
        for c in codes {
            m.insert((*c).to_string(), problem.clone());
        }
        m.insert(ok_code.to_string(), ok);
        Value::Object(m)
    };
    let schema = |name: &str| json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
    let aor = json!({"name": "aor", "in": "path", "required": true,
        "description": "an address-of-record: user@domain, or a sip:, sips: or tel: URI; a user that the dial plan makes a number is that number, under the first of registrar.domains",
        "schema": {"type": "string", "minLength": 1}});
    let page = json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        {"name": "after", "in": "query", "description": "the previous page's 'next' (exclusive)", "schema": {"type": "string"}}
    ]);
    let mut reg_query = page.as_array().cloned().unwrap_or_default();
    reg_query.push(json!({"name": "aor", "in": "query", "description": "only this AOR", "schema": {"type": "string"}}));
    let mut put_user_answers = errors(&["401", "404", "413", "415", "422"], "200", schema("User"));
    put_user_answers["201"] = json!({"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}});
    let paths = json!({
        "/v1/users/{aor}": {
            "parameters": [aor.clone()],
            "get": {"operationId": "getUser", "responses": errors(&["401", "404", "422"], "200", schema("User"))},
            "put": {"operationId": "putUser",
                "description": "Creates (201) or replaces (200) the user allowed to register this AOR. Only HA1 digests are kept, for the realm registrar.realm; a password is never stored nor answered.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserBody"}}}},
                "responses": put_user_answers},
            "delete": {"operationId": "deleteUser", "description": "Deletes the user and its bindings.",
                "responses": errors(&["401", "404", "422"], "204", json!({"description": "Done"}))}
        },
        "/v1/users": {"get": {"operationId": "listUsers", "parameters": page,
            "responses": errors(&["401", "404", "422"], "200", schema("UserList"))}},
        "/v1/registrations": {"get": {"operationId": "listRegistrations", "parameters": reg_query,
            "responses": errors(&["401", "404", "422"], "200", schema("RegistrationList"))}},
        "/v1/registrations/{aor}": {"parameters": [aor],
            "delete": {"operationId": "deleteRegistrations", "description": "Removes every binding of the AOR (404 when it had none).",
                "responses": errors(&["401", "404", "422"], "204", json!({"description": "Done"}))}}
    });
    let schemas = json!({
        "UserBody": {"type": "object", "additionalProperties": false,
            "description": "Exactly one of password and ha1.",
            "properties": {
                "password": {"type": "string", "minLength": 1, "maxLength": 1024},
                "ha1": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
                    "SHA-256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                    "MD5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}}}
            }},
        "User": {"type": "object", "required": ["aor", "realm", "algorithms"], "properties": {
            "aor": {"type": "string"}, "realm": {"type": "string"},
            "algorithms": {"type": "array", "items": {"enum": ["SHA-256", "MD5"]}}}},
        "UserList": {"type": "object", "required": ["items", "next"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
            "next": {"type": ["string", "null"]}}},
        "Registration": {"type": "object", "required": ["aor", "contacts"], "properties": {
            "aor": {"type": "string"},
            "contacts": {"type": "array", "items": {"type": "object", "required": ["uri", "q", "expires", "call_id", "cseq"], "properties": {
                "uri": {"type": "string"}, "q": {"type": "number"},
                "expires": {"type": "integer", "description": "seconds left"},
                "call_id": {"type": "string"}, "cseq": {"type": "integer"}}}}}},
        "RegistrationList": {"type": "object", "required": ["items", "next"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Registration"}},
            "next": {"type": ["string", "null"]}}}
    });
    if let (Some(p), Value::Object(add)) = (doc["paths"].as_object_mut(), paths) {
        p.extend(add);
    }
    if let (Some(s), Value::Object(add)) = (doc["components"]["schemas"].as_object_mut(), schemas) {
        s.extend(add);
    }
    doc["components"]["schemas"]["Decision"]["properties"]["source"] =
        json!({"enum": ["registrar", "local", "cache", "upstream", "gateway", "none"]});
}
