//! A JSON Schema validator for `json.validate` / `json.validate_string` (spec §3.8.6).
//!
//! Supports the keywords apps use in practice (drafts 7 and 2020-12): `type` (string or list;
//! `integer` accepts integral floats), `enum`, `const`, `properties`, `required`,
//! `additionalProperties` (bool or schema), `patternProperties`, `propertyNames`,
//! `minProperties`/`maxProperties`, `dependentRequired`, `items` (schema, or a list = tuple),
//! `prefixItems`, `additionalItems`, `contains`, `minItems`/`maxItems`, `uniqueItems`,
//! `minLength`/`maxLength` (in characters), `pattern`, `minimum`/`maximum`,
//! `exclusiveMinimum`/`exclusiveMaximum` (number or draft-4 boolean form), `multipleOf`,
//! `allOf`/`anyOf`/`oneOf`/`not`, `if`/`then`/`else`, and local `$ref`s (`#`, `#/definitions/…`,
//! `#/$defs/…`, any JSON pointer into the root schema). `format` is an annotation (not
//! asserted), as the specification allows. Unknown keywords are ignored.
//!
//! Lua has no empty-object literal distinct from an empty array, so an empty table satisfies
//! both `"type": "object"` and `"type": "array"`.
//!
//! The first failure is reported as `"<path>: <reason>"` (`path` is a JSON pointer into the
//! value, `/` for the root).

use regex::Regex;
use serde_json::Value as J;

/// Maximum schema nesting followed while validating (guards against `$ref` loops).
const MAX_DEPTH: usize = 256;

/// Validate `v` against `schema`; `Err` carries the first failure.
pub fn validate(schema: &J, v: &J) -> Result<(), String> {
    let mut ctx = Ctx {
        root: schema,
        depth: 0,
    };
    ctx.check(schema, v, "")
}

struct Ctx<'a> {
    root: &'a J,
    depth: usize,
}

fn path_str(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

fn type_of(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn is_type(v: &J, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => match v {
            J::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "array" => v.is_array() || matches!(v, J::Object(m) if m.is_empty()),
        "object" => v.is_object() || matches!(v, J::Array(a) if a.is_empty()),
        _ => false,
    }
}

fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

fn num(v: &J) -> Option<f64> {
    v.as_f64()
}

impl<'a> Ctx<'a> {
    fn resolve(&self, r: &str) -> Result<&'a J, String> {
        let Some(ptr) = r.strip_prefix('#') else {
            return Err(format!("unsupported $ref \"{r}\" (only local references)"));
        };
        if ptr.is_empty() {
            return Ok(self.root);
        }
        let unescaped = ptr.replace("%25", "%");
        self.root
            .pointer(&unescaped)
            .ok_or_else(|| format!("unresolvable $ref \"{r}\""))
    }

    fn check(&mut self, s: &'a J, v: &J, path: &str) -> Result<(), String> {
        let s = match s {
            J::Bool(true) => return Ok(()),
            J::Bool(false) => return Err(format!("{}: no value is allowed here", path_str(path))),
            J::Object(m) => m,
            _ => return Ok(()),
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("schema nesting too deep (recursive $ref?)".into());
        }
        let r = self.check_obj(s, v, path);
        self.depth -= 1;
        r
    }

    fn check_obj(
        &mut self,
        s: &'a serde_json::Map<String, J>,
        v: &J,
        path: &str,
    ) -> Result<(), String> {
        let at = path_str(path);
        if let Some(J::String(r)) = s.get("$ref") {
            let target = self.resolve(r)?;
            self.check(target, v, path)?;
        }
        if let Some(t) = s.get("type") {
            let ok = match t {
                J::String(t) => is_type(v, t),
                J::Array(ts) => ts.iter().any(|t| t.as_str().is_some_and(|t| is_type(v, t))),
                _ => true,
            };
            if !ok {
                let want = match t {
                    J::String(t) => t.clone(),
                    other => other.to_string(),
                };
                return Err(format!("{at}: expected {want}, got {}", type_of(v)));
            }
        }
        if let Some(J::Array(opts)) = s.get("enum")
            && !opts.iter().any(|o| json_eq(o, v))
        {
            return Err(format!(
                "{at}: value must be one of {}",
                J::Array(opts.clone())
            ));
        }
        if let Some(c) = s.get("const")
            && !json_eq(c, v)
        {
            return Err(format!("{at}: value must be {c}"));
        }
        match v {
            J::Number(_) => self.check_number(s, v, at)?,
            J::String(st) => self.check_string(s, st, at)?,
            J::Array(a) => self.check_array(s, a, path)?,
            J::Object(o) => self.check_object(s, o, path)?,
            _ => {}
        }
        if let Some(J::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, v, path)?;
            }
        }
        if let Some(J::Array(any)) = s.get("anyOf")
            && !any.iter().any(|sub| self.check(sub, v, path).is_ok())
        {
            return Err(format!(
                "{at}: value does not match any of the allowed schemas"
            ));
        }
        if let Some(J::Array(one)) = s.get("oneOf") {
            let n = one
                .iter()
                .filter(|sub| self.check(sub, v, path).is_ok())
                .count();
            if n != 1 {
                return Err(format!(
                    "{at}: value must match exactly one schema (matched {n})"
                ));
            }
        }
        if let Some(not) = s.get("not")
            && self.check(not, v, path).is_ok()
        {
            return Err(format!("{at}: value must not match the schema"));
        }
        if let Some(cond) = s.get("if") {
            if self.check(cond, v, path).is_ok() {
                if let Some(t) = s.get("then") {
                    self.check(t, v, path)?;
                }
            } else if let Some(e) = s.get("else") {
                self.check(e, v, path)?;
            }
        }
        Ok(())
    }

    fn check_number(&self, s: &serde_json::Map<String, J>, v: &J, at: &str) -> Result<(), String> {
        let x = num(v).unwrap_or(0.0);
        let excl_bool = |k: &str| matches!(s.get(k), Some(J::Bool(true)));
        let (emin, emax) = (excl_bool("exclusiveMinimum"), excl_bool("exclusiveMaximum"));
        if let Some(m) = s.get("minimum").and_then(num)
            && (x < m || (emin && x == m))
        {
            return Err(format!(
                "{at}: must be {} {m}",
                if emin { ">" } else { ">=" }
            ));
        }
        if let Some(m) = s.get("maximum").and_then(num)
            && (x > m || (emax && x == m))
        {
            return Err(format!(
                "{at}: must be {} {m}",
                if emax { "<" } else { "<=" }
            ));
        }
        if let Some(m) = s.get("exclusiveMinimum").and_then(num)
            && x <= m
        {
            return Err(format!("{at}: must be > {m}"));
        }
        if let Some(m) = s.get("exclusiveMaximum").and_then(num)
            && x >= m
        {
            return Err(format!("{at}: must be < {m}"));
        }
        if let Some(m) = s.get("multipleOf").and_then(num)
            && m > 0.0
        {
            let q = x / m;
            if (q - q.round()).abs() > 1e-9 {
                return Err(format!("{at}: must be a multiple of {m}"));
            }
        }
        Ok(())
    }

    fn check_string(
        &self,
        s: &serde_json::Map<String, J>,
        st: &str,
        at: &str,
    ) -> Result<(), String> {
        let len = st.chars().count() as u64;
        if let Some(m) = s.get("minLength").and_then(J::as_u64)
            && len < m
        {
            return Err(format!("{at}: length must be >= {m}"));
        }
        if let Some(m) = s.get("maxLength").and_then(J::as_u64)
            && len > m
        {
            return Err(format!("{at}: length must be <= {m}"));
        }
        if let Some(J::String(p)) = s.get("pattern") {
            let re = Regex::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            if !re.is_match(st) {
                return Err(format!("{at}: does not match pattern {p:?}"));
            }
        }
        Ok(())
    }

    fn check_array(
        &mut self,
        s: &'a serde_json::Map<String, J>,
        a: &[J],
        path: &str,
    ) -> Result<(), String> {
        let at = path_str(path);
        let n = a.len() as u64;
        if let Some(m) = s.get("minItems").and_then(J::as_u64)
            && n < m
        {
            return Err(format!("{at}: must have at least {m} items"));
        }
        if let Some(m) = s.get("maxItems").and_then(J::as_u64)
            && n > m
        {
            return Err(format!("{at}: must have at most {m} items"));
        }
        if matches!(s.get("uniqueItems"), Some(J::Bool(true))) {
            for i in 0..a.len() {
                for j in i + 1..a.len() {
                    if json_eq(&a[i], &a[j]) {
                        return Err(format!("{at}: items {i} and {j} are equal"));
                    }
                }
            }
        }
        // Tuple forms: `prefixItems` (2020-12) or an `items` list (draft 7).
        let (tuple, rest): (Option<&'a Vec<J>>, Option<&'a J>) =
            match (s.get("prefixItems"), s.get("items")) {
                (Some(J::Array(p)), items) => (Some(p), items),
                (_, Some(J::Array(p))) => (Some(p), s.get("additionalItems")),
                (_, items) => (None, items),
            };
        let start = tuple.map_or(0, |t| t.len().min(a.len()));
        if let Some(t) = tuple {
            for (i, (sub, x)) in t.iter().zip(a).enumerate() {
                self.check(sub, x, &format!("{path}/{i}"))?;
            }
        }
        if let Some(rest) = rest {
            for (i, x) in a.iter().enumerate().skip(start) {
                self.check(rest, x, &format!("{path}/{i}"))?;
            }
        }
        if let Some(c) = s.get("contains")
            && !a.iter().any(|x| self.check(c, x, path).is_ok())
        {
            return Err(format!("{at}: no item matches the \"contains\" schema"));
        }
        Ok(())
    }

    fn check_object(
        &mut self,
        s: &'a serde_json::Map<String, J>,
        o: &serde_json::Map<String, J>,
        path: &str,
    ) -> Result<(), String> {
        let at = path_str(path);
        let n = o.len() as u64;
        if let Some(m) = s.get("minProperties").and_then(J::as_u64)
            && n < m
        {
            return Err(format!("{at}: must have at least {m} properties"));
        }
        if let Some(m) = s.get("maxProperties").and_then(J::as_u64)
            && n > m
        {
            return Err(format!("{at}: must have at most {m} properties"));
        }
        if let Some(J::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(J::as_str) {
                if !o.contains_key(r) {
                    return Err(format!("{at}: missing required property \"{r}\""));
                }
            }
        }
        if let Some(J::Object(dep)) = s.get("dependentRequired") {
            for (k, req) in dep {
                if o.contains_key(k)
                    && let J::Array(req) = req
                {
                    for r in req.iter().filter_map(J::as_str) {
                        if !o.contains_key(r) {
                            return Err(format!(
                                "{at}: property \"{r}\" is required when \"{k}\" is present"
                            ));
                        }
                    }
                }
            }
        }
        let props = match s.get("properties") {
            Some(J::Object(p)) => Some(p),
            _ => None,
        };
        let patterns: Vec<(Regex, &'a J)> = match s.get("patternProperties") {
            Some(J::Object(pp)) => pp
                .iter()
                .map(|(p, sub)| {
                    Regex::new(p)
                        .map(|re| (re, sub))
                        .map_err(|e| format!("invalid pattern {p:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        for (k, x) in o {
            let child = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
            if let Some(names) = s.get("propertyNames") {
                self.check(names, &J::String(k.clone()), &child)?;
            }
            let mut matched = false;
            if let Some(sub) = props.and_then(|p| p.get(k)) {
                matched = true;
                self.check(sub, x, &child)?;
            }
            for (re, sub) in &patterns {
                if re.is_match(k) {
                    matched = true;
                    self.check(sub, x, &child)?;
                }
            }
            if !matched && let Some(add) = s.get("additionalProperties") {
                if matches!(add, J::Bool(false)) {
                    return Err(format!("{at}: additional property \"{k}\" is not allowed"));
                }
                self.check(add, x, &child)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn common_keywords() {
        let s = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "kind": {"enum": ["a", "b"]},
                "ref": {"$ref": "#/$defs/pos"}
            },
            "additionalProperties": false,
            "$defs": {"pos": {"type": "number", "exclusiveMinimum": 0}}
        });
        assert!(
            validate(
                &s,
                &json!({"name": "x", "age": 3, "tags": ["a"], "kind": "a", "ref": 1.5})
            )
            .is_ok()
        );
        assert!(validate(&s, &json!({"name": "x", "age": 3.0})).is_ok());
        assert!(
            validate(&s, &json!({}))
                .unwrap_err()
                .contains("missing required property \"name\"")
        );
        assert!(
            validate(&s, &json!({"name": ""}))
                .unwrap_err()
                .contains("/name")
        );
        assert!(validate(&s, &json!({"name": "x", "age": -1})).is_err());
        assert!(validate(&s, &json!({"name": "x", "tags": ["a", "a"]})).is_err());
        assert!(validate(&s, &json!({"name": "x", "kind": "c"})).is_err());
        assert!(validate(&s, &json!({"name": "x", "ref": 0})).is_err());
        assert!(
            validate(&s, &json!({"name": "x", "extra": 1}))
                .unwrap_err()
                .contains("extra")
        );
        let one = json!({"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]});
        assert!(validate(&one, &json!(1)).is_ok());
        assert!(validate(&one, &json!(7)).is_err());
        let cond = json!({"if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}});
        assert!(validate(&cond, &json!({"a": 1})).is_err());
        assert!(validate(&cond, &json!({"a": 2})).is_ok());
        // An empty Lua table arrives as [] but may stand for an object.
        assert!(validate(&json!({"type": "object"}), &json!([])).is_ok());
        let rec = json!({"$ref": "#"});
        assert!(validate(&rec, &json!(1)).is_err());
    }
}
