//! XML, just enough for EC2's answers (no attributes, no CDATA): finding,
//! replacing and removing elements, and the instance items of an answer.

use std::ops::Range;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The next `<tag>` or `<tag/>` (not `<tagX>`) at or after `from`:
/// (start, end of the opening tag, self-closing).
fn next_open(xml: &str, tag: &str, from: usize) -> Option<(usize, usize, bool)> {
    let pattern = format!("<{tag}");
    let mut at = from;
    while let Some(i) = xml.get(at..)?.find(&pattern) {
        let start = at + i;
        let after = start + pattern.len();
        match xml.as_bytes().get(after) {
            Some(b'>') => return Some((start, after + 1, false)),
            Some(b'/') if xml.as_bytes().get(after + 1) == Some(&b'>') => {
                return Some((start, after + 2, true));
            }
            Some(c) if c.is_ascii_whitespace() => {
                let end = start + xml[start..].find('>')? + 1;
                return Some((start, end, xml.as_bytes()[end - 2] == b'/'));
            }
            _ => at = after,
        }
    }
    None
}

/// Ranges of the outermost `tag` elements in `xml`, nested ones included in
/// their parent's range.
pub fn elements(xml: &str, tag: &str) -> Vec<Range<usize>> {
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((start, open_end, self_closing)) = next_open(xml, tag, at) {
        if self_closing {
            found.push(start..open_end);
            at = open_end;
            continue;
        }
        let mut depth = 1;
        let mut cursor = open_end;
        let end = loop {
            let next_close = xml[cursor..].find(&close).map(|i| cursor + i);
            let next_nested = next_open(xml, tag, cursor)
                .filter(|(s, _, sc)| !sc && next_close.is_none_or(|c| *s < c));
            match (next_nested, next_close) {
                (Some((_, nested_end, _)), _) => {
                    depth += 1;
                    cursor = nested_end;
                }
                (None, Some(c)) => {
                    depth -= 1;
                    cursor = c + close.len();
                    if depth == 0 {
                        break Some(cursor);
                    }
                }
                (None, None) => break None,
            }
        };
        let Some(end) = end else { break };
        found.push(start..end);
        at = end;
    }
    found
}

/// The text inside the first `<tag>...</tag>`, `""` for `<tag/>`.
pub fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let range = elements(xml, tag).into_iter().next()?;
    let element = &xml[range];
    let inner_start = element.find('>')? + 1;
    let inner_end = element.rfind("</").filter(|e| *e >= inner_start);
    Some(inner_end.map_or("", |e| &element[inner_start..e]))
}

/// The texts of every outermost `tag` element.
pub fn all_texts(xml: &str, tag: &str) -> Vec<String> {
    elements(xml, tag)
        .into_iter()
        .filter_map(|r| element_text(&xml[r], tag).map(str::to_owned))
        .collect()
}

/// Replaces each outermost `tag` element with `f(element)`, or removes it.
pub fn splice(xml: &str, tag: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut last = 0;
    for r in elements(xml, tag) {
        out.push_str(&xml[last..r.start]);
        if let Some(new) = f(&xml[r.clone()]) {
            out.push_str(&new);
        }
        last = r.end;
    }
    out.push_str(&xml[last..]);
    out
}

/// Replaces the first `tag` element of `xml` with `new` (unchanged if absent).
pub fn replace_element(xml: &str, tag: &str, new: &str) -> String {
    match elements(xml, tag).into_iter().next() {
        Some(r) => format!("{}{new}{}", &xml[..r.start], &xml[r.end..]),
        None => xml.to_owned(),
    }
}

/// Each instance `<item>` of every `<instancesSet>` through `f(id, item)`;
/// `None` leaves the instance out.
pub fn rewrite_instances(xml: &str, mut f: impl FnMut(&str, &str) -> Option<String>) -> String {
    splice(xml, "instancesSet", |set| {
        Some(splice(set, "item", |item| {
            match element_text(item, "instanceId") {
                Some(id) => f(id, item),
                None => Some(item.to_owned()),
            }
        }))
    })
}

/// The ids of the instances in an answer, in order.
pub fn instance_ids(xml: &str) -> Vec<String> {
    let mut ids = Vec::new();
    rewrite_instances(xml, |id, item| {
        ids.push(id.to_owned());
        Some(item.to_owned())
    });
    ids
}

/// (id, state name) of the instances in an answer, in order: `instanceState`
/// (DescribeInstances, RunInstances) or `currentState` (Start/Stop/Terminate).
pub fn instance_states(xml: &str) -> Vec<(String, String)> {
    let mut states = Vec::new();
    rewrite_instances(xml, |id, item| {
        let state = element_text(item, "instanceState")
            .or_else(|| element_text(item, "currentState"))
            .and_then(|s| element_text(s, "name"))
            .unwrap_or_default();
        states.push((id.to_owned(), state.to_owned()));
        Some(item.to_owned())
    });
    states
}

/// Leaves out reservations whose every instance was left out: EC2 never lists
/// an empty reservation.
pub fn drop_empty_reservations(xml: &str) -> String {
    splice(xml, "reservationSet", |set| {
        Some(splice(set, "item", |reservation| {
            let has_instances = elements(reservation, "instancesSet")
                .into_iter()
                .any(|r| !elements(&reservation[r], "item").is_empty());
            has_instances.then(|| reservation.to_owned())
        }))
    })
}

pub(super) fn is_empty_state_reason(item: &str) -> bool {
    element_text(item, "stateReason").is_some_and(|inner| {
        element_text(inner, "code").unwrap_or_default().is_empty()
            && element_text(inner, "message")
                .unwrap_or_default()
                .is_empty()
    })
}

/// Sets (or, with `None`, removes) an instance item's `stateReason`.
pub fn set_state_reason(item: &str, reason: Option<(&str, &str)>) -> String {
    let new = reason.map_or(String::new(), |(code, message)| {
        format!(
            "<stateReason><code>{}</code><message>{}</message></stateReason>",
            escape(code),
            escape(message)
        )
    });
    if !elements(item, "stateReason").is_empty() {
        return replace_element(item, "stateReason", &new);
    }
    match item.rfind("</item>") {
        Some(end) => format!("{}{new}{}", &item[..end], &item[end..]),
        None => item.to_owned(),
    }
}
