//! The progress hook: every step is reported, in order, as it starts and
//! ends.

use std::sync::Mutex;

use super::*;

/// Records every event as a line.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

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
}

impl Recorder {
    fn steps(&self) -> Vec<String> {
        let events = self.0.lock().unwrap().clone();
        events
            .into_iter()
            .filter(|e| !e.starts_with("msg "))
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
        want.push(format!("start {}/5 {}", step.step, step.name));
        want.push(format!("end {}/5 {} Success", step.step, step.name));
    }
    assert_eq!(recorder.steps(), want);
    assert_eq!(want.len(), 10);
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
    assert_eq!(done.steps.len(), 6);
    assert_eq!(
        recorder.steps(),
        [
            "start 1/6 Snapshot",
            "end 1/6 Snapshot Success",
            "start 2/6 Status Check",
            "end 2/6 Status Check Success",
            "start 3/6 Memory Update",
            "end 3/6 Memory Update Success",
            "start 4/6 Health Check",
            "end 4/6 Health Check Success",
            "end 5/6 Reboot Skipped",
            "end 6/6 Final Check Skipped",
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
