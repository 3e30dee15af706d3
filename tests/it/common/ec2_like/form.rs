//! The query protocol's form body (`application/x-www-form-urlencoded`):
//! EC2's requests are `Action=...&Param.1=...`.

/// `application/x-www-form-urlencoded` pairs, in order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_form(k), decode_form(v))
        })
        .collect()
}

pub fn decode_form(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn encode_form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of parameter `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Instance ids a request names (`InstanceId`, `InstanceId.1`, ...), in order.
pub fn named_instances(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .filter(|(k, v)| (k == "InstanceId" || k.starts_with("InstanceId.")) && v.starts_with("i-"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// The parameters that must match for a ClientToken replay: all but the token.
pub fn without_token(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "ClientToken")
        .cloned()
        .collect();
    rest.sort();
    rest
}
