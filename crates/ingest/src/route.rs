//! Routing reports to tenants by the domains they own.

use std::collections::HashMap;

use sealwatch_model::DomainName;
use sealwatch_store::RouteEntry;

/// Where a report belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub tenant_id: i64,
    pub domain_id: i64,
}

/// Domain → tenant lookup. Subdomains roll up to the closest domain a tenant owns
/// (`mail.shop.example.com` → `example.com` if that is what the tenant registered).
#[derive(Debug, Clone, Default)]
pub struct Router {
    domains: HashMap<String, Route>,
}

impl Router {
    pub fn new(entries: impl IntoIterator<Item = RouteEntry>) -> Self {
        Router {
            domains: entries
                .into_iter()
                .map(|e| {
                    (
                        e.domain.to_string(),
                        Route {
                            tenant_id: e.tenant_id,
                            domain_id: e.domain_id,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Routes a domain. With `only_tenant` (a per-tenant mailbox), a domain owned by another
    /// tenant does not route: a report in the wrong mailbox is not silently moved across.
    pub fn route(&self, domain: &DomainName, only_tenant: Option<i64>) -> Option<Route> {
        let mut current = Some(domain.clone());
        while let Some(d) = current {
            if let Some(route) = self.domains.get(d.as_str()) {
                return match only_tenant {
                    Some(t) if t != route.tenant_id => None,
                    _ => Some(*route),
                };
            }
            current = d.parent();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::parse(s).expect("valid domain")
    }

    fn router() -> Router {
        Router::new([
            RouteEntry {
                domain: d("example.com"),
                domain_id: 1,
                tenant_id: 10,
            },
            RouteEntry {
                domain: d("shop.example.com"),
                domain_id: 2,
                tenant_id: 20,
            },
            RouteEntry {
                domain: d("other.org"),
                domain_id: 3,
                tenant_id: 30,
            },
        ])
    }

    #[test]
    fn subdomains_roll_up_to_the_closest_owned_domain() {
        let r = router();
        assert_eq!(
            r.route(&d("mail.example.com"), None),
            Some(Route {
                tenant_id: 10,
                domain_id: 1
            })
        );
        assert_eq!(
            r.route(&d("a.shop.example.com"), None),
            Some(Route {
                tenant_id: 20,
                domain_id: 2
            })
        );
        assert_eq!(
            r.route(&d("example.com"), None),
            Some(Route {
                tenant_id: 10,
                domain_id: 1
            })
        );
    }

    #[test]
    fn unknown_domains_and_lookalikes_do_not_route() {
        let r = router();
        assert_eq!(r.route(&d("badexample.com"), None), None);
        assert_eq!(r.route(&d("com"), None), None);
        assert_eq!(r.route(&d("nobody.net"), None), None);
    }

    #[test]
    fn per_tenant_mailboxes_only_route_their_own_domains() {
        let r = router();
        assert_eq!(r.route(&d("other.org"), Some(10)), None);
        assert_eq!(
            r.route(&d("other.org"), Some(30)),
            Some(Route {
                tenant_id: 30,
                domain_id: 3
            })
        );
    }
}
