//! Outbound policies (classes of service): ordered rules of a tenant. A rule's pattern is read
//! by the renderer's own pattern type, so what is accepted here is what the dialplan matches.

use super::audit::{record, Change};
use super::tenant::{check_version, TenantKey};
use super::trunk::trunk_usable_by_tenant;
use super::{retry_busy, Actor, Workspace};
use crate::domain::{parse_prepend, PolicyName, TrunkName};
use crate::error::{Error, Result, ValidationError};
use crate::model::{NewPolicy, Policy, PolicyPatch, PolicyRule};
use crate::store::{db_error, policies, tenants};
use pbxdesk_render::pattern::Pattern;
use sqlx::AnyConnection;

const MAX_RULES: usize = 200;

/// Checks a rule list; the error names the rule by its position (1-based).
fn checked_rules(rules: &[PolicyRule]) -> Result<Vec<PolicyRule>, ValidationError> {
    if rules.len() > MAX_RULES {
        return Err(ValidationError::new(
            "rules",
            &rules.len().to_string(),
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |field: &str| format!("rules[{}].{field}", i + 1);
        Pattern::parse(r.pattern.trim()).map_err(|why| {
            ValidationError::new(
                &at("pattern"),
                &r.pattern,
                format!("{why}; {}", Pattern::RULE),
            )
        })?;
        if r.strip > 20 {
            return Err(ValidationError::new(
                &at("strip"),
                &r.strip.to_string(),
                "0 to 20 digits",
            ));
        }
        let prepend = parse_prepend(&r.prepend).map_err(|e| e.for_field(&at("prepend")))?;
        let mut trunks = Vec::new();
        for t in &r.trunks {
            let n = TrunkName::parse(t).map_err(|e| e.for_field(&at("trunks")))?;
            if trunks.contains(&n.to_string()) {
                return Err(ValidationError::new(
                    &at("trunks"),
                    t,
                    "a trunk is listed twice",
                ));
            }
            trunks.push(n.to_string());
        }
        if r.allow && trunks.is_empty() {
            return Err(ValidationError::new(
                &at("trunks"),
                "",
                "a rule that allows calls needs at least one trunk",
            ));
        }
        if !r.allow && !trunks.is_empty() {
            return Err(ValidationError::new(
                &at("trunks"),
                &trunks.join(","),
                "a deny rule sends nothing to a trunk; leave trunks empty",
            ));
        }
        out.push(PolicyRule {
            pattern: r.pattern.trim().to_owned(),
            allow: r.allow,
            strip: r.strip,
            prepend,
            trunks,
        });
    }
    Ok(out)
}

/// Reads a rule as the CLI writes it: `PATTERN allow|deny [strip=N] [prepend=DIGITS] [trunks=a,b]`.
pub fn parse_rule(spec: &str) -> Result<PolicyRule, ValidationError> {
    let rule = "PATTERN allow|deny [strip=N] [prepend=+41] [trunks=a,b], e.g. \"_0[1-9]X. allow strip=1 prepend=+41 trunks=sipcall\"";
    let mut words = spec.split_whitespace();
    let pattern = words
        .next()
        .ok_or_else(|| ValidationError::new("rule", spec, rule))?;
    let allow = match words.next() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(ValidationError::new("rule", spec, rule)),
    };
    let mut r = PolicyRule {
        pattern: pattern.to_owned(),
        allow,
        strip: 0,
        prepend: String::new(),
        trunks: Vec::new(),
    };
    for w in words {
        match w.split_once('=') {
            Some(("strip", v)) => {
                r.strip = v
                    .parse()
                    .map_err(|_| ValidationError::new("strip", v, "a number of digits, 0 to 20"))?
            }
            Some(("prepend", v)) => r.prepend = v.to_owned(),
            Some(("trunks", v)) => {
                r.trunks = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            _ => return Err(ValidationError::new("rule", spec, rule)),
        }
    }
    Ok(r)
}

impl Workspace {
    /// Every trunk a rule names must exist on the tenant's PBX.
    async fn check_rule_trunks(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        rules: &[PolicyRule],
    ) -> Result<()> {
        for (i, r) in rules.iter().enumerate() {
            for t in &r.trunks {
                if !trunk_usable_by_tenant(conn, tenant.id, t).await? {
                    return Err(ValidationError::new(
                        &format!("rules[{}].trunks", i + 1),
                        t,
                        "a trunk of the tenant's PBX that the tenant may use (see `trunk list`; an MSP operator allows it with `trunk update --tenants`)",
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn policy_in_tx(&self, conn: &mut AnyConnection, id: i64) -> Result<Policy> {
        let head = policies::head(&mut *conn, id)
            .await?
            .ok_or_else(|| Error::not_found("policy", id))?;
        let rules = policies::rules(&mut *conn, id)
            .await?
            .into_iter()
            .map(policies::RuleRow::into_rule)
            .collect();
        Ok(Policy {
            id,
            tenant: head.tenant,
            is_default: head.tenant_default.as_deref() == Some(head.name.as_str()),
            name: head.name,
            rules,
            version: head.version,
        })
    }

    async fn policy_id(&self, tenant: &TenantKey, name: &str) -> Result<i64> {
        policies::id_by_name(self.store.pool(), tenant.id, name.trim())
            .await?
            .ok_or_else(|| Error::not_found("policy", format!("{}/{}", tenant.slug, name.trim())))
    }

    pub async fn policy_add(&self, actor: &Actor, input: &NewPolicy) -> Result<Policy> {
        actor.require_write()?;
        let name = PolicyName::parse(&input.name)?;
        let rules = checked_rules(&input.rules)?;
        let tenant = self.tenant_key(actor, &input.tenant).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        self.check_rule_trunks(&mut w.tx, &tenant, &rules).await?;
        let id = policies::insert(&mut w.tx, tenant.id, &tenant.slug, name.as_str(), now).await?;
        policies::replace_rules(&mut w.tx, id, &rules).await?;
        if input.make_default {
            tenants::set_default_policy(&mut w.tx, tenant.id, Some(name.as_str()), now).await?;
        }
        let p = self.policy_in_tx(&mut w.tx, id).await?;
        let c = Change {
            action: "policy.add",
            entity_type: "policy",
            entity_id: format!("{}/{}", tenant.slug, p.name),
            tenant_id: Some(tenant.id),
        };
        record::<Policy, Policy>(&mut w, actor, now, c, None, Some(&p)).await?;
        w.commit().await?;
        Ok(p)
    }

    pub async fn policy_list(&self, actor: &Actor, tenant: &str) -> Result<Vec<Policy>> {
        let tenant = self.tenant_key(actor, tenant).await?;
        let ids = policies::ids_of_tenant(self.store.pool(), tenant.id).await?;
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        let mut out = Vec::new();
        for id in ids {
            out.push(self.policy_in_tx(&mut conn, id).await?);
        }
        Ok(out)
    }

    pub async fn policy_show(&self, actor: &Actor, tenant: &str, name: &str) -> Result<Policy> {
        let tenant = self.tenant_key(actor, tenant).await?;
        let id = self.policy_id(&tenant, name).await?;
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        self.policy_in_tx(&mut conn, id).await
    }

    /// Replaces a policy's rules (in order).
    pub async fn policy_update(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        patch: &PolicyPatch,
    ) -> Result<Policy> {
        actor.require_write()?;
        let rules = patch.rules.as_deref().map(checked_rules).transpose()?;
        let tenant = self.tenant_key(actor, tenant).await?;
        retry_busy(|| async {
            let id = self.policy_id(&tenant, name).await?;
            let now = self.now();
            let mut w = self.store.begin_write().await?;
            let before = self.policy_in_tx(&mut w.tx, id).await?;
            check_version(
                "policy",
                &before.name,
                before.version,
                patch.expected_version,
            )?;
            if let Some(rules) = &rules {
                self.check_rule_trunks(&mut w.tx, &tenant, rules).await?;
                policies::replace_rules(&mut w.tx, id, rules).await?;
            }
            policies::touch(&mut w.tx, id, now).await?;
            let after = self.policy_in_tx(&mut w.tx, id).await?;
            let c = Change {
                action: "policy.update",
                entity_type: "policy",
                entity_id: format!("{}/{}", tenant.slug, after.name),
                tenant_id: Some(tenant.id),
            };
            record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
            w.commit().await?;
            Ok(after)
        })
        .await
    }

    /// Removes a policy that is neither the tenant's default nor any user's own.
    pub async fn policy_remove(&self, actor: &Actor, tenant: &str, name: &str) -> Result<Policy> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, tenant).await?;
        let id = self.policy_id(&tenant, name).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.policy_in_tx(&mut w.tx, id).await?;
        if before.is_default {
            return Err(Error::Conflict(format!("policy \"{}\" is the default of tenant \"{}\"; choose another default first (tenant update --default-policy)", before.name, tenant.slug)));
        }
        let users = policies::users_following(&mut w.tx, tenant.id, &before.name).await?;
        if users > 0 {
            return Err(Error::Conflict(format!(
                "{users} user(s) of tenant \"{}\" follow policy \"{}\"; give them another first",
                tenant.slug, before.name
            )));
        }
        policies::delete(&mut w.tx, id).await?;
        let c = Change {
            action: "policy.remove",
            entity_type: "policy",
            entity_id: format!("{}/{}", tenant.slug, before.name),
            tenant_id: Some(tenant.id),
        };
        record::<Policy, Policy>(&mut w, actor, now, c, Some(&before), None).await?;
        w.commit().await?;
        Ok(before)
    }
}

impl Workspace {
    /// Inserts `rule` at `at` (1-based; `None`: last) into a policy's rules, refused if the
    /// policy changed meanwhile (the position was chosen on what the caller saw).
    pub async fn policy_rule_insert(
        &self,
        actor: &Actor,
        tenant: &str,
        policy: &str,
        at: Option<usize>,
        rule: PolicyRule,
    ) -> Result<Policy> {
        let current = self.policy_show(actor, tenant, policy).await?;
        let mut rules = current.rules.clone();
        let at = at.unwrap_or(rules.len() + 1);
        if at == 0 || at > rules.len() + 1 {
            return Err(ValidationError::new(
                "at",
                &at.to_string(),
                format!("a position from 1 to {}", rules.len() + 1),
            )
            .into());
        }
        rules.insert(at - 1, rule);
        let patch = PolicyPatch {
            rules: Some(rules),
            expected_version: Some(current.version),
        };
        self.policy_update(actor, tenant, policy, &patch).await
    }

    /// Removes the rule at `position` (1-based) from a policy, refused if the policy changed
    /// meanwhile.
    pub async fn policy_rule_remove(
        &self,
        actor: &Actor,
        tenant: &str,
        policy: &str,
        position: usize,
    ) -> Result<Policy> {
        let current = self.policy_show(actor, tenant, policy).await?;
        let mut rules = current.rules.clone();
        if position == 0 || position > rules.len() {
            return Err(ValidationError::new(
                "position",
                &position.to_string(),
                format!("a rule position from 1 to {}", rules.len()),
            )
            .into());
        }
        rules.remove(position - 1);
        let patch = PolicyPatch {
            rules: Some(rules),
            expected_version: Some(current.version),
        };
        self.policy_update(actor, tenant, policy, &patch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_and_checked() {
        let r = parse_rule("_0[1-9]X. allow strip=1 prepend=+41 trunks=sipcall,backup").unwrap();
        assert_eq!(r.trunks, ["sipcall", "backup"]);
        assert!(checked_rules(&[r]).is_ok());
        assert!(parse_rule("_0X. maybe").is_err());
        assert!(parse_rule("_0X. allow colour=red").is_err());
        let bad = |spec: &str| {
            checked_rules(&[parse_rule(spec).unwrap()])
                .unwrap_err()
                .field
        };
        assert_eq!(bad("_0X; allow trunks=a1"), "rules[1].pattern");
        assert_eq!(bad("_0X. allow"), "rules[1].trunks");
        assert_eq!(bad("_0X. deny trunks=a1"), "rules[1].trunks");
        assert_eq!(
            bad("_0X. allow prepend=${SHELL(x)} trunks=a1"),
            "rules[1].prepend"
        );
        assert_eq!(bad("_0X. allow strip=99 trunks=a1"), "rules[1].strip");
        assert_eq!(bad("_0X. allow trunks=Bad_Name"), "rules[1].trunks");
    }
}
