//! Distinguished names (RFC 4514), attribute descriptions and filter values
//! (RFC 4515): parsing for validation, normalization for comparison.

use std::fmt::Write as _;

/// One attribute-value assertion of an RDN: lowercased type, unescaped value.
type Ava = (String, String);

/// Parses a DN into RDNs (each a list of attribute-value assertions), or says
/// what is wrong with it. The empty string is the (valid) root DN.
pub(crate) fn parse_dn(dn: &str) -> Result<Vec<Vec<Ava>>, String> {
    let mut rdns = Vec::new();
    if dn.trim().is_empty() {
        return Ok(rdns);
    }
    let chars: Vec<char> = dn.chars().collect();
    let mut i = 0;
    let mut rdn: Vec<Ava> = Vec::new();
    loop {
        // Attribute type.
        let start = i;
        while i < chars.len() && chars[i] != '=' && chars[i] != ',' && chars[i] != '+' {
            i += 1;
        }
        let attr: String = chars[start..i].iter().collect::<String>().trim().to_owned();
        if i >= chars.len() || chars[i] != '=' {
            return Err(if attr.is_empty() {
                "an RDN is empty (stray `,` or `+`)".to_owned()
            } else {
                format!("`{attr}` has no `=value`")
            });
        }
        if !is_attribute_type(&attr) {
            return Err(format!("`{attr}` is not a valid attribute type"));
        }
        i += 1; // '='
        // Value.
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let mut value = String::new();
        let mut trailing_spaces = 0usize;
        let mut bytes: Vec<u8> = Vec::new();
        let flush = |bytes: &mut Vec<u8>, value: &mut String| -> Result<(), String> {
            if !bytes.is_empty() {
                let s = String::from_utf8(std::mem::take(bytes))
                    .map_err(|_| "a hex escape is not valid UTF-8".to_owned())?;
                value.push_str(&s);
            }
            Ok(())
        };
        if i < chars.len() && chars[i] == '#' {
            // BER-encoded value: #hex, compared as is.
            let s = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i == s + 1 || (i - s - 1) % 2 != 0 {
                return Err(format!("`{attr}` has a malformed `#` hex value"));
            }
            value = chars[s..i].iter().collect::<String>().to_lowercase();
        } else {
            while i < chars.len() && chars[i] != ',' && chars[i] != ';' && chars[i] != '+' {
                let c = chars[i];
                if c == '\\' {
                    let next = chars.get(i + 1).copied();
                    match next {
                        Some(h) if h.is_ascii_hexdigit() => {
                            let l = chars.get(i + 2).copied().filter(char::is_ascii_hexdigit);
                            let Some(l) = l else {
                                return Err(format!("`{attr}` has a malformed `\\` hex escape"));
                            };
                            let byte = u8::from_str_radix(&format!("{h}{l}"), 16)
                                .map_err(|_| format!("`{attr}` has a malformed escape"))?;
                            bytes.push(byte);
                            trailing_spaces = 0;
                            i += 3;
                            continue;
                        }
                        Some(e @ (' ' | '"' | '#' | '+' | ',' | ';' | '<' | '=' | '>' | '\\')) => {
                            flush(&mut bytes, &mut value)?;
                            value.push(e);
                            trailing_spaces = 0;
                            i += 2;
                            continue;
                        }
                        _ => return Err(format!("`{attr}` has an invalid `\\` escape")),
                    }
                }
                if c == '"' || c == '<' || c == '>' || c == '=' {
                    return Err(format!("`{attr}` has an unescaped `{c}` in its value"));
                }
                flush(&mut bytes, &mut value)?;
                if c == ' ' {
                    trailing_spaces += 1;
                } else {
                    trailing_spaces = 0;
                }
                value.push(c);
                i += 1;
            }
            flush(&mut bytes, &mut value)?;
            value.truncate(value.len() - trailing_spaces);
        }
        rdn.push((attr.to_ascii_lowercase(), value));
        if i >= chars.len() {
            rdns.push(std::mem::take(&mut rdn));
            break;
        }
        match chars[i] {
            '+' => {}
            _ => rdns.push(std::mem::take(&mut rdn)),
        }
        i += 1;
        if i >= chars.len() {
            return Err("the DN ends with a separator".to_owned());
        }
    }
    Ok(rdns)
}

/// A comparable form of a DN: attribute types and values lowercased, spaces
/// around separators dropped, escapes resolved, multi-valued RDNs sorted.
/// A DN that does not parse is lowercased as is.
pub(crate) fn normalize_dn(dn: &str) -> String {
    // Most DNs have nothing to unescape, trim or reorder: for those, parsing
    // and rebuilding gives exactly the lowercased text (a directory read
    // normalizes every member DN, 100,000s of them).
    if dn
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b',' | b'.' | b'_' | b'-' | b'@'))
    {
        return dn.to_ascii_lowercase();
    }
    normalize_parsed(dn)
}

/// [`normalize_dn`] by parsing.
fn normalize_parsed(dn: &str) -> String {
    let Ok(rdns) = parse_dn(dn) else {
        return dn.trim().to_lowercase();
    };
    let mut out = String::with_capacity(dn.len());
    for (n, rdn) in rdns.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let mut avas: Vec<String> = rdn
            .into_iter()
            .map(|(a, v)| format!("{a}={}", escape_dn_value(&v.to_lowercase())))
            .collect();
        avas.sort();
        out.push_str(&avas.join("+"));
    }
    out
}

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An attribute type: a descriptor (`cn`, `entryUUID`) or a numeric OID.
pub(crate) fn is_attribute_type(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
        Some(c) if c.is_ascii_digit() => s
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())),
        _ => false,
    }
}

/// An attribute description: a type with optional `;options`.
pub(crate) fn is_attribute_description(s: &str) -> bool {
    let mut parts = s.split(';');
    parts.next().is_some_and(is_attribute_type)
        && parts.all(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Escapes a value for use in a search filter (RFC 4515).
pub fn escape_filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if matches!(b, b'*' | b'(' | b')' | b'\\' | 0) || b >= 0x80 {
            let _ = write!(out, "\\{b:02x}");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Checks a search filter (RFC 4515): balanced parentheses and what ldap3
/// can encode.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    let f = filter.trim();
    if f.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !f.starts_with('(') || !f.ends_with(')') {
        return Err(format!("`{f}` must be enclosed in parentheses"));
    }
    let mut depth = 0i64;
    let mut escaped = false;
    for c in f.chars() {
        match c {
            '\\' if !escaped => {
                escaped = true;
                continue;
            }
            '(' if !escaped => depth += 1,
            ')' if !escaped => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("`{f}` has an unbalanced `)`"));
                }
            }
            _ => {}
        }
        escaped = false;
    }
    if depth != 0 {
        return Err(format!("`{f}` has unbalanced parentheses"));
    }
    ldap3::parse_filter(f).map_err(|()| format!("`{f}` is not a valid LDAP filter"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn dns() {
        assert!(parse_dn("cn=admin,dc=example,dc=test").is_ok());
        assert!(parse_dn("").unwrap().is_empty());
        assert!(parse_dn("cn=a\\,b+uid=x, dc=ex").is_ok());
        assert!(parse_dn("cn=admin,,dc=x").is_err());
        assert!(parse_dn("cn=admin,dc=x,").is_err());
        assert!(parse_dn("admin").is_err());
        assert!(parse_dn("=x,dc=y").is_err());
        assert!(parse_dn("c n=x").is_err());
        assert!(parse_dn("cn=x\\").is_err());
        assert!(parse_dn("cn=x\\zz").is_err());
        assert_eq!(
            normalize_dn("CN=Alice Smith , OU=People,dc=Example"),
            "cn=alice smith,ou=people,dc=example"
        );
        assert_eq!(normalize_dn("cn=a\\2cb"), normalize_dn("cn=a\\,b"));
        assert_eq!(
            normalize_dn("uid=x+cn=y,dc=z"),
            normalize_dn("cn=y + uid=x,dc=z")
        );
    }

    #[test]
    fn the_fast_path_normalizes_like_parsing() {
        for dn in [
            "uid=User000123,ou=People,dc=Example,dc=org",
            "CN=group-0001,OU=groups,DC=x",
            "mail=a.b@example.com,dc=x",
            "x-attr=1,dc=x",
            "1cn=x,dc=y",
            "cn=a=b,dc=y",
            "cn=,dc=y",
            "admin",
            "cn=x,,dc=y",
            "cn=x,",
            ",",
            "",
            "my_attr=v,dc=x",
        ] {
            assert_eq!(normalize_dn(dn), normalize_parsed(dn), "{dn}");
        }
    }

    #[test]
    fn filters() {
        assert!(check_filter("(objectClass=inetOrgPerson)").is_ok());
        assert!(check_filter("(|(objectClass=groupOfNames)(objectClass=posixGroup))").is_ok());
        assert!(check_filter("(&(a=b)(!(c=d*)))").is_ok());
        assert!(check_filter("(objectClass=inetOrgPerson").is_err());
        assert!(check_filter("objectClass=x").is_err());
        assert!(check_filter("(a=b))").is_err());
        assert!(check_filter("(=b)").is_err());
        assert!(check_filter("").is_err());
        assert_eq!(escape_filter_value("a*(b)\\"), "a\\2a\\28b\\29\\5c");
    }
}
