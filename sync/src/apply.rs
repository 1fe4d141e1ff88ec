//! Applying a plan to in-memory state: what the server does in SQL, for tests
//! and simulations (idempotence, dry runs over many users).

use crate::plan::{GroupInfo, Plan, UserState, World};

/// The id [`apply`] gives a group the plan creates. The server gives real ids.
pub fn created_group_id(organization_id: &str, name: &str) -> String {
    format!("created:{organization_id}:{name}")
}

/// The user and world after applying `plan`: organizations joined and left
/// (leaving drops the organization's groups and roles), groups created (with
/// [`created_group_id`] ids), joined and left, roles given and taken.
/// A refused plan changes nothing.
pub fn apply(plan: &Plan, user: &UserState, world: &World) -> (UserState, World) {
    let mut user = user.clone();
    let mut world = world.clone();
    if plan.is_refused() {
        return (user, world);
    }

    for groups in plan.groups.values() {
        for change in &groups.remove {
            if let Some(id) = &change.id {
                user.groups.remove(id);
            }
        }
        for change in &groups.add {
            let id = match (&change.id, change.create) {
                (_, true) => {
                    let id = created_group_id(&groups.organization_id, &change.name);
                    if !world.groups.iter().any(|g| g.id == id) {
                        world.groups.push(GroupInfo {
                            id: id.clone(),
                            organization_id: groups.organization_id.clone(),
                            name: change.name.clone(),
                        });
                    }
                    id
                }
                (Some(id), false) => id.clone(),
                (None, false) => continue,
            };
            user.groups.insert(id);
        }
    }

    for roles in plan.roles.values() {
        let Some(org) = &roles.organization_id else {
            continue;
        };
        let set = user.org_roles.entry(org.clone()).or_default();
        for change in &roles.remove {
            set.remove(&change.name);
        }
        for change in &roles.add {
            set.insert(change.name.clone());
        }
        if set.is_empty() {
            user.org_roles.remove(org);
        }
    }

    for change in &plan.site_roles.remove {
        user.site_roles.remove(&change.name);
    }
    for change in &plan.site_roles.add {
        user.site_roles.insert(change.name.clone());
    }

    for change in &plan.organizations.remove {
        user.orgs.remove(&change.id);
        user.org_roles.remove(&change.id);
        let left: Vec<&str> = world
            .groups
            .iter()
            .filter(|g| g.organization_id == change.id)
            .map(|g| g.id.as_str())
            .collect();
        user.groups.retain(|g| !left.contains(&g.as_str()));
    }
    for change in &plan.organizations.add {
        user.orgs.insert(change.id.clone());
    }

    (user, world)
}
