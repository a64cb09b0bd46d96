//! Start order: services grouped into levels through `depends_on`, so each level starts in
//! parallel once everything it depends on is ready.
use std::collections::{BTreeMap, BTreeSet};

use super::compose::ServiceSpec;

/// Levels of service names; level 0 has no dependencies. Errors name a cycle.
pub fn levels(services: &BTreeMap<String, ServiceSpec>) -> Result<Vec<Vec<String>>, String> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut levels = Vec::new();
    while placed.len() < services.len() {
        let level: Vec<String> = services
            .iter()
            .filter(|(name, _)| !placed.contains(name.as_str()))
            .filter(|(_, spec)| {
                spec.depends_on
                    .keys()
                    .all(|d| placed.contains(d.as_str()) || !services.contains_key(d))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if level.is_empty() {
            let rest: Vec<&str> = services
                .keys()
                .map(String::as_str)
                .filter(|n| !placed.contains(n))
                .collect();
            return Err(format!("depends_on has a cycle among: {}", rest.join(", ")));
        }
        for name in &level {
            placed.insert(services.get_key_value(name).expect("present").0);
        }
        levels.push(level);
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::compose::{Condition, WaitSpec};

    fn svc(name: &str, deps: &[&str]) -> (String, ServiceSpec) {
        (
            name.to_string(),
            ServiceSpec {
                name: name.into(),
                image: "x".into(),
                command: None,
                entrypoint: None,
                environment: Default::default(),
                ports: vec![],
                mounts: vec![],
                healthcheck: None,
                depends_on: deps
                    .iter()
                    .map(|d| (d.to_string(), Condition::Started))
                    .collect(),
                aliases: vec![],
                labels: Default::default(),
                user: None,
                working_dir: None,
                shm_size: None,
                tmpfs: vec![],
                wait: WaitSpec::Started,
                timeout: std::time::Duration::from_secs(1),
                uploads: vec![],
                stays: vec![],
            },
        )
    }

    #[test]
    fn independent_services_share_level_zero() {
        let s = BTreeMap::from([svc("b", &[]), svc("a", &[])]);
        assert_eq!(levels(&s).unwrap(), vec![vec!["a", "b"]]);
    }

    #[test]
    fn the_stack_levels_follow_dependencies() {
        let s = BTreeMap::from([
            svc("app", &["mailpit", "geoip", "netcup"]),
            svc("proxy", &["app", "mailpit"]),
            svc("mailpit", &[]),
            svc("geoip", &[]),
            svc("netcup", &[]),
            svc("playwright", &["proxy"]),
        ]);
        assert_eq!(
            levels(&s).unwrap(),
            vec![
                vec!["geoip", "mailpit", "netcup"],
                vec!["app"],
                vec!["proxy"],
                vec!["playwright"]
            ]
        );
    }

    #[test]
    fn diamond_puts_the_join_after_both_branches() {
        let s = BTreeMap::from([
            svc("a", &[]),
            svc("b", &["a"]),
            svc("c", &["a", "b"]),
            svc("d", &["c", "a"]),
        ]);
        assert_eq!(
            levels(&s).unwrap(),
            vec![vec!["a"], vec!["b"], vec!["c"], vec!["d"]]
        );
    }

    #[test]
    fn cycles_are_named() {
        let s = BTreeMap::from([svc("a", &["b"]), svc("b", &["a"]), svc("c", &[])]);
        let e = levels(&s).unwrap_err();
        assert!(e.contains("a, b"), "{e}");
        let s = BTreeMap::from([svc("self", &["self"])]);
        assert!(levels(&s).is_err());
    }

    #[test]
    fn empty_stack_has_no_levels() {
        assert!(levels(&BTreeMap::new()).unwrap().is_empty());
    }
}
