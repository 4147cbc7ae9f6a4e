//! The configuration as `/api/v1/status/config` shows it: secrets replaced
//! by `<secret>`, as Prometheus shows its loaded configuration.

use yaml_serde::Value;

/// Keys whose values are secrets in Prometheus's configuration
/// (`basic_auth.password`, `authorization.credentials`, `bearer_token`,
/// `oauth2.client_secret`, and any other `password`).
const SECRET_KEYS: [&str; 4] = ["password", "credentials", "bearer_token", "client_secret"];

/// `text` (a configuration that parsed) re-serialized with every secret
/// replaced by `<secret>`. Comments and formatting are not kept. `None`
/// when the text is not YAML.
pub fn redact_secrets(text: &str) -> Option<String> {
    let mut value: Value = yaml_serde::from_str(text).ok()?;
    redact(&mut value);
    yaml_serde::to_string(&value).ok()
}

fn redact(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                if k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k)) && !v.is_null() {
                    *v = Value::String("<secret>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(redact),
        Value::Tagged(t) => redact(&mut t.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced() {
        let out = redact_secrets(
            "scrape_configs:\n- job_name: a\n  basic_auth: {username: u, password: p1}\n- job_name: b\n  authorization: {credentials: c1}\n  bearer_token_file: /f\n",
        );
        let out = out.as_deref().unwrap_or("");
        assert!(!out.contains("p1") && !out.contains("c1"), "{out}");
        assert!(
            out.contains("password: <secret>") && out.contains("/f"),
            "{out}"
        );
        assert!(out.contains("username: u"), "{out}");
    }
}
