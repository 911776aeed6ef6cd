//! One page of an admin list (`GET /v1/users`, `GET /v1/registrations`): the first keys
//! after a cursor, in order, chosen from a map that is not sorted.
//!
//! Must not touch: what the keys are or where they live (`users`, `location` call it
//! under their own locks).

/// The first `limit` of `items` by key after `after` (exclusive), in order: the admin
/// lists' page. A selection, not a sort of every AOR, and no copy of a key that is not
/// on the page, so a page of a million AORs costs one pass.
pub fn first_after<'a, V>(
    items: impl Iterator<Item = (&'a str, V)>,
    after: Option<&str>,
    limit: usize,
) -> Vec<(&'a str, V)> {
    let mut page: Vec<_> = items
        .filter(|(k, _)| after.is_none_or(|a| *k > a))
        .collect();
    if page.len() > limit {
        page.select_nth_unstable_by(limit, |a, b| a.0.cmp(b.0));
        page.truncate(limit);
    }
    page.sort_unstable_by(|a, b| a.0.cmp(b.0));
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_the_first_keys_after_the_cursor_in_order() {
        let keys = ["d@x", "a@x", "c@x", "e@x", "b@x"];
        let page = |after, limit| -> Vec<&str> {
            first_after(keys.iter().map(|k| (*k, ())), after, limit)
                .into_iter()
                .map(|(k, ())| k)
                .collect()
        };
        assert_eq!(page(None, 2), ["a@x", "b@x"]);
        assert_eq!(page(Some("b@x"), 2), ["c@x", "d@x"]);
        assert_eq!(page(Some("c@x"), 10), ["d@x", "e@x"]);
        assert!(page(Some("e@x"), 10).is_empty());
        assert!(page(None, 0).is_empty());
    }
}
