//! The progress hook: every step is reported, in order, as it starts and
//! ends, and transfers report their bytes.

use std::sync::Mutex;

use crate::engine::backup::REPORT_EVERY;

use super::*;

/// Records every event as a line, and byte counts apart.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>, Mutex<Vec<(String, u64, Option<u64>)>>);

impl Progress for Recorder {
    fn step_started(&self, index: usize, total: usize, name: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("start {index}/{total} {name}"));
    }
    fn step_finished(&self, index: usize, total: usize, step: &Step) {
        assert_eq!(step.step, index);
        self.0.lock().unwrap().push(format!(
            "end {index}/{total} {} {:?}",
            step.name, step.status
        ));
    }
    fn message(&self, text: &str) {
        self.0.lock().unwrap().push(format!("msg {text}"));
    }
    fn bytes(&self, what: &str, done: u64, total: Option<u64>) {
        self.1.lock().unwrap().push((what.to_owned(), done, total));
    }
}

impl Recorder {
    fn steps(&self) -> Vec<String> {
        let events = self.0.lock().unwrap().clone();
        events
            .into_iter()
            .filter(|e| !e.starts_with("msg "))
            .collect()
    }
    /// The counts reported for `what`, with the totals they carried.
    fn bytes_of(&self, what: &str) -> Vec<(u64, Option<u64>)> {
        let events = self.1.lock().unwrap().clone();
        events
            .into_iter()
            .filter(|(w, _, _)| w == what)
            .map(|(_, done, total)| (done, total))
            .collect()
    }
    fn messages(&self) -> Vec<String> {
        let events = self.0.lock().unwrap().clone();
        events
            .into_iter()
            .filter(|e| e.starts_with("msg "))
            .collect()
    }
}

fn recorded(world: &World) -> (Context, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let ctx = world.cli().with_progress(recorder.clone());
    (ctx, recorder)
}

#[tokio::test]
async fn maintain_reports_every_step_in_order() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let (ctx, recorder) = recorded(&world);
    let done = maintain(&ctx, Some("web-1"), MaintainOptions::default())
        .await
        .unwrap();
    let mut want = Vec::new();
    for step in &done.steps {
        want.push(format!("start {}/7 {}", step.step, step.name));
        want.push(format!("end {}/7 {} Success", step.step, step.name));
    }
    assert_eq!(recorder.steps(), want);
    assert_eq!(want.len(), 14);
    let messages = recorder.messages();
    assert!(
        messages.iter().any(|m| m.contains("provider API"))
            && messages.iter().any(|m| m.contains("boot again")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn skipped_and_snapshot_steps_are_reported_too() {
    let world = World::new();
    let (ctx, recorder) = recorded(&world);
    let options = MaintainOptions {
        skip_reboot: true,
        snapshot: true,
        ..MaintainOptions::default()
    };
    let done = maintain(&ctx, Some("web-1"), options).await.unwrap();
    assert_eq!(done.steps.len(), 7);
    assert_eq!(
        recorder.steps(),
        [
            "start 1/7 Backup",
            "end 1/7 Backup Success",
            "start 2/7 Snapshot",
            "end 2/7 Snapshot Success",
            "start 3/7 Status Check",
            "end 3/7 Status Check Success",
            "start 4/7 Memory Update",
            "end 4/7 Memory Update Success",
            "start 5/7 Health Check",
            "end 5/7 Health Check Success",
            "end 6/7 Reboot Skipped",
            "end 7/7 Final Check Skipped",
        ]
    );
}

#[tokio::test]
async fn update_restart_and_refusals_report_their_steps() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let (ctx, recorder) = recorded(&world);
    update(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(
        recorder.steps(),
        [
            "start 1/2 Status Check",
            "end 1/2 Status Check Success",
            "start 2/2 Memory Update",
            "end 2/2 Memory Update Success",
        ]
    );
    let (ctx, recorder) = recorded(&world);
    restart(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(
        recorder.steps(),
        [
            "start 1/2 Reboot",
            "end 1/2 Reboot Success",
            "start 2/2 Health Check",
            "end 2/2 Health Check Success",
        ]
    );
    let recorder = Arc::new(Recorder::default());
    let refused = world
        .context(Surface::Mcp, &[CLOUD_TOKEN])
        .with_progress(recorder.clone());
    maintain(&refused, Some("web-1"), MaintainOptions::default())
        .await
        .unwrap_err();
    assert!(recorder.steps().is_empty(), "a refusal runs no step");
}

#[tokio::test]
async fn backup_restore_reports_before_after_and_each_step() {
    let world = World::new();
    backup_create(&world.cli(), Some("man-1")).await.unwrap();
    let (ctx, recorder) = recorded(&world);
    let done = backup_restore(&ctx, Some("man-1"), None).await.unwrap();
    let want: Vec<String> = done
        .steps
        .iter()
        .map(|s| {
            format!(
                "end {}/{} {} {:?}",
                s.step,
                done.steps.len(),
                s.name,
                s.status
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(recorder.steps(), want);
    let messages = recorder.messages();
    assert!(
        messages[0].starts_with("msg Restoring backup"),
        "{messages:?}"
    );
    assert_eq!(messages.last().unwrap(), "msg Restore finished");
}

/// `len` bytes that do not compress (xorshift), so the stored artifact is
/// about as large as the data.
fn noise(len: usize) -> Vec<u8> {
    kastell_testkit::data::noise(0x9e37_79b9_7f4a_7c15, len)
}

/// Counts that strictly increase, more than one of them, ending at `end`.
fn assert_counts(counts: &[(u64, Option<u64>)], end: u64, total: Option<u64>) {
    assert!(counts.len() > 1, "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0].0 < w[1].0), "{counts:?}");
    assert_eq!(counts.last().map(|c| c.0), Some(end), "{counts:?}");
    assert!(counts.iter().all(|c| c.1 == total), "{counts:?}");
}

#[tokio::test]
async fn backup_create_and_restore_report_increasing_bytes_ending_at_the_size() {
    let world = World::new();
    let data = noise(1_500_000);
    let config = noise(300_000);
    world.platform.set_data(&data, &config);

    let (ctx, recorder) = recorded(&world);
    let created = backup_create(&ctx, Some("man-1")).await.unwrap();
    assert_counts(
        &recorder.bytes_of("receiving memory-db.dump"),
        data.len() as u64,
        None,
    );
    assert_counts(
        &recorder.bytes_of("receiving memory-config.tar"),
        config.len() as u64,
        None,
    );

    let id = kastell_core::types::BackupId::new(created.backup_id.clone()).unwrap();
    let stored = ctx.engine.find("man-1", &id).unwrap().manifest.unwrap();
    let (ctx, recorder) = recorded(&world);
    world.platform.set_data(b"damaged", b"damaged");
    backup_restore(&ctx, Some("man-1"), Some(&created.backup_id))
        .await
        .unwrap();
    assert_eq!(world.platform.data(), (data, config), "restored");
    for artifact in &stored.artifacts {
        assert!(artifact.size > REPORT_EVERY, "{artifact:?}");
        assert_counts(
            &recorder.bytes_of(&format!("sending {}", artifact.name)),
            artifact.size,
            Some(artifact.size),
        );
    }
    let safety = recorder.bytes_of("receiving memory-db.dump");
    assert_eq!(
        safety.last().map(|c| c.0),
        Some(7),
        "the safety backup reports what it received"
    );
}

/// A hook that reports "cancelled" once the step `after` has finished.
struct CancelAfter {
    after: &'static str,
    cancelled: std::sync::atomic::AtomicBool,
}

impl Progress for CancelAfter {
    fn step_started(&self, _index: usize, _total: usize, _name: &str) {}

    fn step_finished(&self, _index: usize, _total: usize, step: &Step) {
        if step.name == self.after {
            self.cancelled
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn cancelling(world: &World, after: &'static str) -> Context {
    world.cli().with_progress(Arc::new(CancelAfter {
        after,
        cancelled: std::sync::atomic::AtomicBool::new(false),
    }))
}

#[tokio::test]
async fn a_cancelled_maintain_stops_before_the_reboot_and_says_what_ran() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let err = maintain(
        &cancelling(&world, "Health Check"),
        Some("web-1"),
        MaintainOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "cancelled", "{err:?}");
    assert!(
        err.error.contains("cancelled before Reboot"),
        "{}",
        err.error
    );
    let status: Vec<_> = err
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        status,
        [
            ("Backup", StepOutcome::Success),
            ("Snapshot", StepOutcome::Success),
            ("Status Check", StepOutcome::Success),
            ("Memory Update", StepOutcome::Success),
            ("Health Check", StepOutcome::Success),
            ("Reboot", StepOutcome::Skipped),
            ("Final Check", StepOutcome::Skipped),
        ]
    );
    assert!(
        !world.cloud.calls().contains(&"reboot"),
        "no reboot was asked for"
    );
}

#[tokio::test]
async fn a_maintain_cancelled_after_the_status_check_changes_nothing() {
    let world = World::new();
    let err = maintain(
        &cancelling(&world, "Status Check"),
        Some("web-1"),
        MaintainOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "cancelled");
    assert!(!world.platform.events().contains(&"update".to_string()));
    assert_eq!(err.steps.len(), 7, "{:?}", err.steps);
}

#[tokio::test]
async fn a_cancelled_restart_reboots_nothing() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let ctx = world.cli().with_progress(Arc::new(CancelAfter {
        after: "",
        cancelled: std::sync::atomic::AtomicBool::new(true),
    }));
    let err = restart(&ctx, Some("web-1")).await.unwrap_err();
    assert_eq!(err.kind, "cancelled");
    assert!(!world.cloud.calls().contains(&"reboot"));
}
