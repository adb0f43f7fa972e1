//! The accept loop: admission against the association limits, then one task per
//! association (or a short one that answers with an A-ASSOCIATE-RJ).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Shared;
use super::association::{Association, RejectWhy, reject, run_association, tls_accept};
use crate::config::ListenerConfig;
use crate::events::Notice;
use crate::tls::ListenerTls;

pub(super) async fn accept_loop(
    sock: TcpListener,
    local: SocketAddr,
    lc: Arc<ListenerConfig>,
    tls: Arc<ListenerTls>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = sock.accept() => a,
        };
        let (client, client_addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept on {local}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let max = shared.limits.max_associations;
        let admitted = shared
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        let source = client_addr.ip();
        let mut refuse = (!admitted).then_some(RejectWhy::Limit);
        if admitted && !shared.admit_source(source) {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            shared
                .metrics
                .connections_shed_total
                .with_label_values(&["source_limit"])
                .inc();
            refuse = Some(RejectWhy::SourceLimit);
        }
        if let Some(why) = refuse {
            if shared.rejecting.load(Ordering::Acquire) >= max.saturating_add(64) {
                tracing::warn!("association {id} from {client_addr}: over the limit, dropped");
                continue;
            }
            shared.rejecting.fetch_add(1, Ordering::AcqRel);
            let shared2 = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let assoc = Association::new(id, client_addr, local, shared2.clone());
                assoc.notice(Notice::Accepted { listen: local });
                let work = async {
                    if let Some(client) = tls_accept(&assoc, &tls, client).await {
                        reject(client, Vec::new(), &assoc, why, None).await;
                    }
                };
                if shared2.unless_cut(work).await.is_none() {
                    assoc.cut_before_forwarding().await;
                }
                drop(assoc);
                shared2.rejecting.fetch_sub(1, Ordering::AcqRel);
            });
            continue;
        }
        shared.metrics.associations_active.inc();
        shared.associations.fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        let lc = lc.clone();
        let tls = tls.clone();
        let handle = tokio::spawn(async move {
            let _guard = ActiveGuard {
                id,
                source,
                shared: shared2.clone(),
            };
            run_association(id, client, client_addr, local, lc, tls, shared2).await;
        });
        if let Ok(mut tasks) = shared.tasks.lock()
            && !handle.is_finished()
        {
            tasks.insert(id, handle.abort_handle());
        }
    }
}

/// Keeps the active count and the task table right however the task ends.
pub(super) struct ActiveGuard {
    id: u64,
    source: IpAddr,
    shared: Arc<Shared>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.shared.release_source(self.source);
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
        self.shared.metrics.associations_active.dec();
        if let Ok(mut t) = self.shared.tasks.lock() {
            t.remove(&self.id);
        }
    }
}
