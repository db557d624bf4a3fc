//! `${NAME}` in header values, resolved from the Wasm VM's environment at
//! load time.

/// Replaces `${NAME}` from the environment; `$${` is a literal `${`.
/// Errors name the variable, never its value.
pub fn interpolate(template: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated '${' in value".to_string())?;
            let (name, tail) = tail.split_at(end);
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name '{name}'"));
            }
            let value =
                env(name).ok_or_else(|| format!("environment variable '{name}' is not set"))?;
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "environment variable '{name}' contains CR, LF or NUL"
                ));
            }
            out.push_str(&value);
            rest = tail.get(1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of every `${NAME}` a configuration references (for Envoy's
/// `vm_config.environment_variables.host_env_keys`).
pub fn referenced_env_vars(template: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    let _ = interpolate(template, &|name| {
        names.borrow_mut().push(name.to_string());
        Some(String::new())
    });
    names.into_inner()
}
