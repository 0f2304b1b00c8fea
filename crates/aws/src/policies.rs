//! The IAM policies of the template's roles, read from `deploy/template.yaml` (as
//! [`provision`](crate::provision) reads its resources), so that tests can check them
//! two ways: statically against the table of what each function's code calls, and on
//! an emulator with IAM enforced, where a principal holding exactly a role's policy runs
//! that function.
//!
//! Only what the roles use is understood: `Effect`, `Action` (one or a list),
//! `Resource` (one or a list of `!Ref X`, `!GetAtt X.Arn` or `!Sub` strings) and whether
//! a statement has a `Condition` (moto does not evaluate conditions; the static check
//! covers those statements).

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::provision::{Intrinsic, ProvisionError, TEMPLATE};

/// One `Allow` statement of a role's inline policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub actions: Vec<String>,
    pub resources: Vec<Intrinsic>,
    /// The statement has a `Condition` block.
    pub conditional: bool,
}

/// The `Allow` statements of every inline policy of the `AWS::IAM::Role` `role_id`.
pub fn role_statements(role_id: &str) -> Result<Vec<Statement>, ProvisionError> {
    let doc: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| ProvisionError::Template(e.to_string()))?;
    let bad = |what: &str| ProvisionError::Template(format!("{role_id}: {what}"));
    let role = doc.get("Resources").and_then(|r| r.get(role_id)).ok_or_else(|| bad("no such resource"))?;
    if role.get("Type").and_then(Value::as_str) != Some("AWS::IAM::Role") {
        return Err(bad("not an AWS::IAM::Role"));
    }
    let policies = role
        .get("Properties")
        .and_then(|p| p.get("Policies"))
        .and_then(Value::as_sequence)
        .ok_or_else(|| bad("no Policies"))?;
    let mut out = Vec::new();
    for policy in policies {
        let statements = policy
            .get("PolicyDocument")
            .and_then(|d| d.get("Statement"))
            .and_then(Value::as_sequence)
            .ok_or_else(|| bad("a policy without statements"))?;
        for st in statements {
            if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                return Err(bad("only Allow statements are understood"));
            }
            let actions = match st.get("Action") {
                Some(Value::String(a)) => vec![a.clone()],
                Some(Value::Sequence(list)) => list
                    .iter()
                    .map(|a| a.as_str().map(str::to_owned).ok_or_else(|| bad("an action is not a string")))
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad("a statement without Action")),
            };
            let resources = match st.get("Resource") {
                Some(Value::Sequence(list)) => list
                    .iter()
                    .map(|r| Intrinsic::parse(r).ok_or_else(|| bad("a resource is not !Ref, !GetAtt or !Sub")))
                    .collect::<Result<_, _>>()?,
                Some(r) => vec![Intrinsic::parse(r).ok_or_else(|| bad("a resource is not !Ref, !GetAtt or !Sub"))?],
                None => return Err(bad("a statement without Resource")),
            };
            out.push(Statement {
                sid: st.get("Sid").and_then(Value::as_str).map(str::to_owned),
                actions,
                resources,
                conditional: st.get("Condition").is_some(),
            });
        }
    }
    Ok(out)
}

/// A resource as the static check names it: `X` for `!Ref X` and `!GetAtt X.Arn`, and a
/// `!Sub` string with every `${X.Arn}` written as `X` (`MessagesTable/index/*`).
pub fn resource_label(r: &Intrinsic) -> String {
    match r {
        Intrinsic::Ref(id) => id.clone(),
        Intrinsic::GetAtt(id, attr) if attr == "Arn" => id.clone(),
        Intrinsic::GetAtt(id, attr) => format!("{id}.{attr}"),
        Intrinsic::Literal(s) => s.clone(),
        Intrinsic::Sub(s) => substitute(s, |var| {
            Some(match var.strip_suffix(".Arn") {
                Some(id) => id.to_owned(),
                None => format!("${{{var}}}"),
            })
        })
        .unwrap_or_else(|| s.clone()),
    }
}

/// `s` with each `${var}` replaced by `f(var)`: `None` if `f` has no value for one, or a
/// `${` is never closed.
fn substitute(s: &str, mut f: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push_str(&f(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Every `(action, resource label)` pair a role's statements allow.
pub fn role_grants(role_id: &str) -> Result<Vec<(String, String)>, ProvisionError> {
    let mut out = Vec::new();
    for st in role_statements(role_id)? {
        for a in &st.actions {
            for r in &st.resources {
                out.push((a.clone(), resource_label(r)));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What the intrinsics of a policy resolve to in one deployment: the value of `!Ref X`
/// and of `!GetAtt X.Arn` per logical id, and the pseudo parameters and parameters
/// `!Sub` strings use (`AWS::Partition`, `AWS::Region`, `AWS::AccountId`, `Stage`).
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub refs: BTreeMap<String, String>,
    pub arns: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
}

impl Resolver {
    /// The concrete value of `r`, or `None` if it names something this deployment lacks.
    pub fn resolve(&self, r: &Intrinsic) -> Option<String> {
        match r {
            Intrinsic::Literal(s) => Some(s.clone()),
            Intrinsic::Ref(id) => self.refs.get(id).or_else(|| self.variables.get(id)).cloned(),
            Intrinsic::GetAtt(id, attr) if attr == "Arn" => self.arns.get(id).cloned(),
            Intrinsic::GetAtt(..) => None,
            Intrinsic::Sub(s) => substitute(s, |var| match var.strip_suffix(".Arn") {
                Some(id) => self.arns.get(id).cloned(),
                None => self.variables.get(var).or_else(|| self.refs.get(var)).cloned(),
            }),
        }
    }

    /// The role's policy as one IAM policy document with concrete ARNs. Statements with
    /// a `Condition` are kept without it (moto does not evaluate conditions); the static
    /// check is what holds those to the code. A resource this deployment lacks is an
    /// error, so a test never runs under a silently narrower policy.
    pub fn policy_document(&self, role_id: &str) -> Result<serde_json::Value, ProvisionError> {
        let mut statements = Vec::new();
        for st in role_statements(role_id)? {
            let resources = st
                .resources
                .iter()
                .map(|r| {
                    self.resolve(r).ok_or_else(|| ProvisionError::Template(format!("{role_id}: cannot resolve {r:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut s = serde_json::json!({ "Effect": "Allow", "Action": st.actions, "Resource": resources });
            if let Some(sid) = st.sid {
                s["Sid"] = serde_json::Value::String(sid);
            }
            statements.push(s);
        }
        Ok(serde_json::json!({ "Version": "2012-10-17", "Statement": statements }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_resources_by_logical_id() {
        assert_eq!(resource_label(&Intrinsic::GetAtt("MessagesTable".into(), "Arn".into())), "MessagesTable");
        assert_eq!(resource_label(&Intrinsic::Ref("WebActionsTopic".into())), "WebActionsTopic");
        assert_eq!(resource_label(&Intrinsic::Sub("${MessagesTable.Arn}/index/*".into())), "MessagesTable/index/*");
        assert_eq!(
            resource_label(&Intrinsic::Sub("arn:${AWS::Partition}:secretsmanager:x:secret:rez/${Stage}/golf/*".into())),
            "arn:${AWS::Partition}:secretsmanager:x:secret:rez/${Stage}/golf/*"
        );
    }

    #[test]
    fn every_role_policy_resolves_to_concrete_arns() {
        let mut r = Resolver::default();
        for (k, v) in
            [("AWS::Partition", "aws"), ("AWS::Region", "us-east-1"), ("AWS::AccountId", "1"), ("Stage", "dev")]
        {
            r.variables.insert(k.into(), v.into());
        }
        r.arns.insert("MessagesTable".into(), "arn:aws:dynamodb:us-east-1:1:table/m".into());
        r.refs.insert("ScheduleGroup".into(), "g".into());
        assert_eq!(
            r.resolve(&Intrinsic::Sub("${MessagesTable.Arn}/index/*".into())).as_deref(),
            Some("arn:aws:dynamodb:us-east-1:1:table/m/index/*")
        );
        assert_eq!(
            r.resolve(&Intrinsic::Sub(
                "arn:${AWS::Partition}:scheduler:x:${AWS::AccountId}:schedule/${ScheduleGroup}/*".into()
            ))
            .as_deref(),
            Some("arn:aws:scheduler:x:1:schedule/g/*")
        );
        assert_eq!(r.resolve(&Intrinsic::Ref("Nope".into())), None);
    }

    #[test]
    fn the_roles_are_read_from_the_template() {
        let st = role_statements("SweeperRole").unwrap();
        assert!(st.iter().any(|s| s.actions.iter().any(|a| a == "sns:Publish")), "{st:?}");
        assert!(role_statements("MessagesTable").is_err());
    }
}
