//! The cloud trials against `MemoryCloud`: the suite's own self-test. The
//! trials about tokens and HTTP faults do not apply to it.

use kastell_testkit::memory::MemoryCloudFixture;

kastell_testkit::cloud_trials!(MemoryCloudFixture::new;
    lists_every_page_and_finds_by_ip,
    find_by_ip_picks_the_public_address,
    reboot_waits_for_the_new_boot,
    snapshot_round_trip_is_scoped_to_its_server,
    restore_from_own_snapshot_waits_until_running,
);
