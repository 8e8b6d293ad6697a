//! systemd's service notifications (sd_notify(3), through the sd-notify crate): `READY=1`
//! once every listener is bound and every zone loaded, `RELOADING=1` and `READY=1` around a
//! reload, `STOPPING=1` at shutdown, and `WATCHDOG=1` at half the `WatchdogSec` interval
//! from the control thread, so that a control thread that hangs stops the keep-alives.
//! Without `NOTIFY_SOCKET` (not run by systemd) all of it does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Every listener is bound and every zone loaded.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// A reload starts.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sends `WATCHDOG=1` for as long as the control runtime runs, when the service manager asks
/// for it (`WATCHDOG_USEC`, and `WATCHDOG_PID` naming this process if set).
pub fn spawn_watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec) / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}
