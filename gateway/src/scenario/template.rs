//! `{{placeholder}}` templates. Values are always substituted as data: the caller picks
//! the encoding (JSON string value, percent-encoded URL part, header value, plain text).

use std::collections::BTreeMap;

/// A parsed template: literal text and placeholder names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

/// Values for placeholders, by name.
pub type Vars = BTreeMap<String, String>;

/// A template refers to a placeholder that has no value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("placeholder {{{{{0}}}}} has no value")]
pub struct MissingVar(pub String);

impl Template {
    /// Parses `{{ name }}` placeholders; names are `A-Za-z0-9_`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
            let name = after[..end].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "{{{{{}}}}} is not a valid placeholder",
                    &after[..end]
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Placeholder names used, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Renders with values passed through `encode`; literal text is kept as written.
    pub fn render_with(
        &self,
        vars: &Vars,
        encode: impl Fn(&str, &mut String),
    ) -> Result<String, MissingVar> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => {
                    let value = vars.get(name).ok_or_else(|| MissingVar(name.clone()))?;
                    encode(value, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Renders with values inserted verbatim (for text and JSON string values, which
    /// the JSON serializer escapes).
    pub fn render(&self, vars: &Vars) -> Result<String, MissingVar> {
        self.render_with(vars, |v, out| out.push_str(v))
    }

    /// Renders for a URL: every value is percent-encoded as one component, so it cannot
    /// add path segments, query parameters or change the host.
    pub fn render_url(&self, vars: &Vars) -> Result<String, MissingVar> {
        self.render_with(vars, |v, out| {
            out.extend(percent_encoding::utf8_percent_encode(v, COMPONENT));
        })
    }
}

/// Everything but RFC 3986 unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A JSON value whose string leaves (not keys) are templates.
#[derive(Clone, Debug)]
pub enum JsonTemplate {
    /// A string with placeholders.
    String(Template),
    /// An array.
    Array(Vec<JsonTemplate>),
    /// An object; keys are literal.
    Object(Vec<(String, JsonTemplate)>),
    /// Numbers, booleans, null: copied as they are.
    Other(serde_json::Value),
}

impl JsonTemplate {
    /// Parses every string leaf of `value`.
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        Ok(match value {
            serde_json::Value::String(s) => Self::String(Template::parse(s)?),
            serde_json::Value::Array(a) => {
                Self::Array(a.iter().map(Self::parse).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(o) => Self::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => Self::Other(other.clone()),
        })
    }

    /// Placeholder names used anywhere inside.
    pub fn vars(&self) -> Vec<&str> {
        match self {
            Self::String(t) => t.vars().collect(),
            Self::Array(a) => a.iter().flat_map(Self::vars).collect(),
            Self::Object(o) => o.iter().flat_map(|(_, v)| v.vars()).collect(),
            Self::Other(_) => Vec::new(),
        }
    }

    /// Renders into a JSON value; substituted values only ever become string contents.
    pub fn render(&self, vars: &Vars) -> Result<serde_json::Value, MissingVar> {
        Ok(match self {
            Self::String(t) => serde_json::Value::String(t.render(vars)?),
            Self::Array(a) => serde_json::Value::Array(
                a.iter().map(|v| v.render(vars)).collect::<Result<_, _>>()?,
            ),
            Self::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(vars)?)))
                    .collect::<Result<_, MissingVar>>()?,
            ),
            Self::Other(v) => v.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("name", "Ivan"),
            ("evil", "\"},\"x\":{\"y\":\"1"),
            ("path", "../a b?c=d&e#f"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn parses_and_renders_placeholders() {
        let t = Template::parse("Hi {{name}}, {{ name }}!").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["name", "name"]);
        assert_eq!(t.render(&vars()).unwrap(), "Hi Ivan, Ivan!");
        assert_eq!(
            Template::parse("plain")
                .unwrap()
                .render(&Vars::new())
                .unwrap(),
            "plain"
        );
    }

    #[test]
    fn rejects_bad_templates_and_missing_values() {
        assert!(Template::parse("{{name").is_err());
        assert!(Template::parse("{{}}").is_err());
        assert!(Template::parse("{{a-b}}").is_err());
        let t = Template::parse("{{nope}}").unwrap();
        assert_eq!(t.render(&vars()), Err(MissingVar("nope".into())));
    }

    #[test]
    fn json_values_stay_data() {
        let data = serde_json::json!({"customer": "{{evil}}", "n": 5, "list": ["{{name}}"]});
        let rendered = JsonTemplate::parse(&data).unwrap().render(&vars()).unwrap();
        assert_eq!(rendered["customer"], "\"},\"x\":{\"y\":\"1");
        assert_eq!(rendered["n"], 5);
        assert_eq!(rendered["list"][0], "Ivan");
        assert_eq!(rendered.as_object().unwrap().len(), 3);
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let t = Template::parse("https://crm.example/c/{{path}}?n={{name}}").unwrap();
        assert_eq!(
            t.render_url(&vars()).unwrap(),
            "https://crm.example/c/..%2Fa%20b%3Fc%3Dd%26e%23f?n=Ivan"
        );
    }
}
