//! `echo`: one C-ECHO on Verification. `echo_once` is also the probe's "is the device
//! still up?" test after each malformed-data case.

use super::*;

impl State<'_> {
    /// One C-ECHO on a fresh association: `Ok(latency_us)` or why not.
    pub(super) fn echo_once(&self) -> Result<u64, String> {
        let rq = self
            .builder()
            .context(Proposal::new(VERIFICATION, &[IMPLICIT_LE, EXPLICIT_LE]));
        let mut link = self.open(&rq).map_err(|e| e.to_string())?;
        let Some((pc, _)) = link.context_for(VERIFICATION, None) else {
            link.abort();
            return Err("Verification context rejected".into());
        };
        let id = link.next_message_id();
        let ex = link
            .request(
                pc,
                &request(field::C_ECHO_RQ, id, VERIFICATION),
                None,
                self.cfg.timeout,
            )
            .map_err(|e| e.to_string())?;
        self.finish(link);
        match ex.status() {
            Some(0) => Ok(ex.latency_us),
            Some(s) => {
                let comment = ex
                    .last()
                    .and_then(|m| m.command.error_comment.as_deref())
                    .map(|c| format!(", error comment \"{}\"", c.trim_end()))
                    .unwrap_or_default();
                Err(format!(
                    "C-ECHO status {}{comment}",
                    status_text(s, field::C_ECHO_RSP)
                ))
            }
            None => Err("C-ECHO-RSP without status".into()),
        }
    }

    pub(super) fn echo(&self) -> CheckResult {
        match self.echo_once() {
            Ok(us) => {
                let r = CheckResult::new(
                    Check::Echo,
                    Verdict::Pass,
                    format!("C-ECHO Success in {:.1} ms", us as f64 / 1000.0),
                );
                match self.cfg.ae() {
                    Some(ae) if !ae.capability.is_empty() && !has_scp_claim(ae, VERIFICATION) => {
                        let mut r = r.detail("the statement does not claim Verification SCP");
                        r.verdict = Verdict::DiffersFromStatement;
                        r
                    }
                    _ => r,
                }
            }
            Err(e) => CheckResult::new(Check::Echo, Verdict::Fail, format!("C-ECHO failed: {e}")),
        }
    }
}
