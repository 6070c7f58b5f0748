//! Retry/backoff policies and deadlines of the real host clients, so guestwire's host client can
//! behave like the one a user runs (and a scenario can predict what that client will do).
//!
//! [`RetryPolicy`] and [`Deadlines`] are pure values: nothing here reads a clock or sleeps. The
//! schedule comes from [`RetryPolicy::delay_before`] (or the [`RetryPolicy::delays`] iterator);
//! jitter takes its randomness as an argument ([`RetryPolicy::jittered`]). Only the thin async
//! adapters [`retry`] and [`retry_if`] use tokio (`tokio::time::sleep` between attempts), so
//! tests can drive them with a paused clock.
//!
//! Presets, with where their numbers come from (`/work/shared/PROTOCOLS.md`, section 1):
//! - seed 001's `DialGuest` ([`RetryPolicy::firecracker_dial`]): 5 attempts, 100 ms backoff
//!   doubling, any dial/handshake error retried;
//! - Kata's Go runtime ([`RetryPolicy::kata`], [`Deadlines::kata`]): `commonDialer` re-dials with no
//!   pause until the agent `dial_timeout` (default 30 s) fires; each hybrid-vsock handshake waits up
//!   to 10 s for a line containing `OK`;
//! - hypeman ([`Deadlines::hypeman`]): 5 s dial + 5 s handshake;
//! - LimiQuantix's node daemon ([`Deadlines::limiquantix`], [`RetryPolicy::limiquantix_reconnect`]):
//!   30 s request timeout, execute = the command's own timeout + 5 s, ping 5 s, reconnect scan
//!   every 30 s;
//! - Volant ([`Deadlines::volant`]): 30 s default deadline per HTTP request.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Seed 001 `DialGuest`: number of dial + handshake attempts.
pub const FIRECRACKER_DIAL_ATTEMPTS: u32 = 5;
/// Seed 001 `DialGuest`: the first backoff; it doubles after every failed attempt.
pub const FIRECRACKER_DIAL_INITIAL: Duration = Duration::from_millis(100);
/// Kata (Go runtime) `dial_timeout` default: how long `commonDialer` keeps re-dialing.
pub const KATA_DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Kata `HybridVSockDialer`: how long one handshake waits for a reply line containing `OK`.
pub const KATA_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// guestwire's stand-in for Kata's pause-free re-dial loop. Kata re-dials at once; a zero pause
/// would spin and keep one error per spin, so guestwire waits this long between dials.
pub const KATA_REDIAL_PAUSE: Duration = Duration::from_millis(10);
/// hypeman: timeout of the Unix-socket dial.
pub const HYPEMAN_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// hypeman: timeout of the `CONNECT`/`OK` handshake ("is exec-agent running in guest?").
pub const HYPEMAN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// LimiQuantix node daemon: default timeout of a request.
pub const LIMIQUANTIX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// LimiQuantix node daemon: an execute request waits for the command's own timeout plus this.
pub const LIMIQUANTIX_EXECUTE_GRACE: Duration = Duration::from_secs(5);
/// LimiQuantix node daemon: timeout of a ping.
pub const LIMIQUANTIX_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// LimiQuantix node daemon: interval of the reconnect scan.
pub const LIMIQUANTIX_RECONNECT_INTERVAL: Duration = Duration::from_secs(30);
/// Volant: default deadline of one HTTP request over vsock.
pub const VOLANT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a backoff delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomisation: the schedule is exact. Every preset uses this (none of the real clients
    /// jitter).
    #[default]
    None,
    /// "Full jitter": uniformly in `[0, delay]`.
    Full,
    /// Uniformly in `[delay − percent %, delay + percent %]`, then clamped to the cap. Percentages
    /// above 100 are taken as 100.
    Spread {
        /// Half-width of the interval, in percent of the delay.
        percent: u8,
    },
}

/// A retry policy: how many attempts, and how long to wait before each one.
///
/// Attempt 0 starts at once; attempt `k ≥ 1` waits `min(initial × factor^(k−1), cap)` (before
/// jitter). Integer arithmetic that overflows saturates to the cap, so no policy panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total number of attempts, the first included. 0 is taken as 1.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial: Duration,
    /// Multiplier applied to the delay after each further failure (1 = constant delay).
    pub factor: u32,
    /// Upper bound on any single delay (`Duration::MAX` for none).
    pub cap: Duration,
    /// Randomisation of each delay; [`Jitter::None`] by default.
    pub jitter: Jitter,
    /// Upper bound on the whole retry loop, measured from the first attempt; `None` for none.
    /// [`retry`] does not start a wait that would end past it; [`RetryPolicy::delays`] counts
    /// only the delays (it cannot know how long the attempts themselves take).
    pub budget: Option<Duration>,
}

impl Default for RetryPolicy {
    /// A single attempt: [`RetryPolicy::once`].
    fn default() -> Self {
        Self::once()
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub const fn once() -> Self {
        Self {
            attempts: 1,
            initial: Duration::ZERO,
            factor: 1,
            cap: Duration::MAX,
            jitter: Jitter::None,
            budget: None,
        }
    }

    /// `attempts` attempts with exponential backoff from `initial` by `factor`, no cap, no jitter,
    /// no budget.
    pub const fn exponential(attempts: u32, initial: Duration, factor: u32) -> Self {
        Self {
            attempts,
            initial,
            factor,
            cap: Duration::MAX,
            jitter: Jitter::None,
            budget: None,
        }
    }

    /// `attempts` attempts `delay` apart.
    pub const fn constant(attempts: u32, delay: Duration) -> Self {
        Self::exponential(attempts, delay, 1)
    }

    /// Seed 001's `DialGuest(ctx, udsPath, port)`: 5 attempts, 100 ms backoff doubling, so
    /// waits of 0, 100, 200, 400 and 800 ms before the attempts.
    pub const fn firecracker_dial() -> Self {
        Self::exponential(FIRECRACKER_DIAL_ATTEMPTS, FIRECRACKER_DIAL_INITIAL, 2)
    }

    /// Kata's Go runtime: re-dial (connect + hybrid-vsock handshake) until the 30 s
    /// `dial_timeout` fires. Kata re-dials without pausing; this waits [`KATA_REDIAL_PAUSE`].
    /// Pair it with [`Deadlines::kata`] for the 10 s handshake wait.
    pub const fn kata() -> Self {
        Self {
            attempts: u32::MAX,
            initial: KATA_REDIAL_PAUSE,
            factor: 1,
            cap: Duration::MAX,
            jitter: Jitter::None,
            budget: Some(KATA_DIAL_TIMEOUT),
        }
    }

    /// hypeman: one dial, one handshake, no retry (a failure is reported to the user).
    pub const fn hypeman() -> Self {
        Self::once()
    }

    /// LimiQuantix node daemon's reconnect scan: try again every 30 s, without end.
    pub const fn limiquantix_reconnect() -> Self {
        Self::constant(u32::MAX, LIMIQUANTIX_RECONNECT_INTERVAL)
    }

    /// The same policy with `cap` as the largest single delay.
    #[must_use]
    pub const fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// The same policy with `jitter`.
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same policy bounded by `budget` overall.
    #[must_use]
    pub const fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The same policy with `attempts` attempts.
    #[must_use]
    pub const fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Number of attempts actually made (`attempts`, with 0 taken as 1).
    pub const fn max_attempts(&self) -> u32 {
        if self.attempts == 0 { 1 } else { self.attempts }
    }

    /// The wait before attempt number `attempt` (0-based), without jitter: `Some(ZERO)` for the
    /// first, `None` once the attempts are used up.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts() {
            return None;
        }
        if attempt == 0 {
            return Some(Duration::ZERO);
        }
        let grown = self
            .factor
            .checked_pow(attempt - 1)
            .and_then(|multiplier| self.initial.checked_mul(multiplier))
            .unwrap_or(Duration::MAX);
        Some(grown.min(self.cap))
    }

    /// Applies the policy's jitter to `delay`, drawing from `sample` (any `u64`, uniformly
    /// distributed for uniform jitter). The result never exceeds the cap. Pure: the same sample
    /// gives the same delay.
    pub fn jittered(&self, delay: Duration, sample: u64) -> Duration {
        let delay = delay.min(self.cap);
        let nanos = delay.as_nanos();
        let (low, width) = match self.jitter {
            Jitter::None => return delay,
            Jitter::Full => (0, nanos),
            Jitter::Spread { percent } => {
                let half = nanos * u128::from(percent.min(100)) / 100;
                (nanos - half, 2 * half)
            }
        };
        // `sample / 2^64` scaled onto `[0, width]`.
        let offset = width.saturating_mul(u128::from(sample)) >> 64;
        let total = low.saturating_add(offset);
        duration_from_nanos(total).min(self.cap)
    }

    /// The unjittered schedule: one delay per attempt, starting with `ZERO` for the first. Stops
    /// after `attempts`, or once the delays alone would exceed the budget.
    pub fn delays(&self) -> Delays {
        Delays {
            policy: *self,
            next: 0,
            elapsed: Duration::ZERO,
        }
    }
}

/// Converts nanoseconds to a `Duration`, saturating at `Duration::MAX`.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits in a u32.
    let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Iterator over a policy's unjittered delays; see [`RetryPolicy::delays`].
#[derive(Debug, Clone)]
pub struct Delays {
    policy: RetryPolicy,
    next: u32,
    elapsed: Duration,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.policy.delay_before(self.next)?;
        let elapsed = self.elapsed.saturating_add(delay);
        if self.policy.budget.is_some_and(|budget| elapsed > budget) {
            return None;
        }
        self.elapsed = elapsed;
        self.next = self.next.saturating_add(1);
        Some(delay)
    }
}

/// Timeouts of a host client's phases; `None` means the client does not bound that phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// Establishing the transport (Unix-socket or vsock connect).
    pub connect: Option<Duration>,
    /// The channel handshake after connecting (hybrid vsock `CONNECT`/`OK`).
    pub handshake: Option<Duration>,
    /// A request waiting for its reply.
    pub request: Option<Duration>,
    /// A ping (liveness check) waiting for its pong, when it differs from `request`.
    pub ping: Option<Duration>,
    /// Added to the command's own timeout to bound an execute request; `None` when the client
    /// uses `request` for executes too.
    pub execute_grace: Option<Duration>,
}

impl Deadlines {
    /// No deadline anywhere.
    pub const fn none() -> Self {
        Self {
            connect: None,
            handshake: None,
            request: None,
            ping: None,
            execute_grace: None,
        }
    }

    /// LimiQuantix node daemon: requests 30 s, execute = command timeout + 5 s, ping 5 s.
    pub const fn limiquantix() -> Self {
        Self {
            connect: None,
            handshake: None,
            request: Some(LIMIQUANTIX_REQUEST_TIMEOUT),
            ping: Some(LIMIQUANTIX_PING_TIMEOUT),
            execute_grace: Some(LIMIQUANTIX_EXECUTE_GRACE),
        }
    }

    /// hypeman: 5 s dial + 5 s handshake.
    pub const fn hypeman() -> Self {
        Self {
            connect: Some(HYPEMAN_DIAL_TIMEOUT),
            handshake: Some(HYPEMAN_HANDSHAKE_TIMEOUT),
            request: None,
            ping: None,
            execute_grace: None,
        }
    }

    /// Kata (Go runtime): each dial bounded by `dial_timeout` (30 s, which also bounds the whole
    /// re-dial loop, see [`RetryPolicy::kata`]); each handshake waits up to 10 s.
    pub const fn kata() -> Self {
        Self {
            connect: Some(KATA_DIAL_TIMEOUT),
            handshake: Some(KATA_HANDSHAKE_TIMEOUT),
            request: None,
            ping: None,
            execute_grace: None,
        }
    }

    /// Volant: a 30 s deadline per HTTP request (one connection per request).
    pub const fn volant() -> Self {
        Self {
            connect: None,
            handshake: None,
            request: Some(VOLANT_REQUEST_TIMEOUT),
            ping: None,
            execute_grace: None,
        }
    }

    /// The deadline of an execute request whose command may run for `command_timeout`:
    /// `command_timeout + execute_grace` when the client has a grace, else `request`.
    pub fn execute(&self, command_timeout: Duration) -> Option<Duration> {
        match self.execute_grace {
            Some(grace) => Some(command_timeout.saturating_add(grace)),
            None => self.request,
        }
    }

    /// The deadline of a ping: `ping` when set, else `request`.
    pub fn ping_or_request(&self) -> Option<Duration> {
        self.ping.or(self.request)
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Every attempt the policy allows failed.
    Exhausted,
    /// The last error was not retryable.
    NotRetryable,
    /// The next wait would have ended past the policy's budget.
    Budget,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exhausted => "attempts exhausted",
            Self::NotRetryable => "error not retryable",
            Self::Budget => "retry budget spent",
        })
    }
}

/// How many errors [`RetryError`]'s `Display` lists in full before eliding the middle.
const DISPLAY_ERRORS: usize = 16;

/// Every attempt failed: the error of each attempt, in order (never empty).
#[derive(Debug)]
pub struct RetryError<E> {
    /// One error per attempt made, oldest first.
    pub attempts: Vec<E>,
    /// Why no further attempt was made.
    pub reason: GiveUp,
}

impl<E> RetryError<E> {
    /// The last attempt's error.
    pub fn last(&self) -> Option<&E> {
        self.attempts.last()
    }

    /// Consumes the error, keeping only the last attempt's error.
    pub fn into_last(self) -> Option<E> {
        self.attempts.into_iter().next_back()
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    /// `gave up after N attempts (reason): #1: …; #2: …`, eliding the middle of long lists.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.attempts.len();
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "gave up after {n} attempt{plural} ({})", self.reason)?;
        let half = DISPLAY_ERRORS / 2;
        for (i, err) in self.attempts.iter().enumerate() {
            if n > DISPLAY_ERRORS && i >= half && i < n - half {
                if i == half {
                    write!(f, "; … {} more …", n - DISPLAY_ERRORS)?;
                }
                continue;
            }
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}#{}: {err}", i + 1)?;
        }
        Ok(())
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Runs `op` under `policy`, retrying every error. See [`retry_if`].
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, op: F) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_if(policy, |_| true, op).await
}

/// Runs `op` until it succeeds, `is_retryable` rejects an error, the attempts run out or the
/// budget would be exceeded; sleeps (`tokio::time::sleep`, so a paused test clock applies) the
/// policy's delay between attempts, jittered with a per-call random sample when the policy asks.
pub async fn retry_if<T, E, F, Fut, C>(
    policy: &RetryPolicy,
    mut is_retryable: C,
    mut op: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: FnMut(&E) -> bool,
{
    let start = tokio::time::Instant::now();
    let mut errors = Vec::new();
    let mut attempt: u32 = 0;
    loop {
        let err = match op().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let retryable = is_retryable(&err);
        errors.push(err);
        if !retryable {
            return Err(RetryError {
                attempts: errors,
                reason: GiveUp::NotRetryable,
            });
        }
        attempt = attempt.saturating_add(1);
        let Some(delay) = policy.delay_before(attempt) else {
            return Err(RetryError {
                attempts: errors,
                reason: GiveUp::Exhausted,
            });
        };
        let delay = policy.jittered(delay, random_sample(attempt));
        if let Some(budget) = policy.budget
            && start.elapsed().saturating_add(delay) > budget
        {
            return Err(RetryError {
                attempts: errors,
                reason: GiveUp::Budget,
            });
        }
        if delay.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(delay).await;
        }
    }
}

/// A fresh random `u64` for jitter (std's per-process random hash keys; not cryptographic).
fn random_sample(attempt: u32) -> u64 {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[allow(non_snake_case)]
    fn MS(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn firecracker_dial_schedule_is_seed_001s() {
        let policy = RetryPolicy::firecracker_dial();
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays, [MS(0), MS(100), MS(200), MS(400), MS(800)]);
        assert_eq!(policy.delay_before(5), None);
        assert_eq!(policy.jitter, Jitter::None);
    }

    #[test]
    fn cap_bounds_every_delay_and_overflow_saturates() {
        let policy = RetryPolicy::exponential(6, MS(100), 10).with_cap(MS(1000));
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(
            delays,
            [MS(0), MS(100), MS(1000), MS(1000), MS(1000), MS(1000)]
        );

        let huge = RetryPolicy::exponential(u32::MAX, Duration::from_secs(1), u32::MAX)
            .with_cap(Duration::from_secs(60));
        assert_eq!(
            huge.delay_before(u32::MAX - 1),
            Some(Duration::from_secs(60))
        );
        let uncapped = RetryPolicy::exponential(u32::MAX, Duration::from_secs(1), u32::MAX);
        assert_eq!(uncapped.delay_before(1_000), Some(Duration::MAX));
    }

    #[test]
    fn zero_attempts_means_one_and_once_never_waits() {
        let zero = RetryPolicy::firecracker_dial().with_attempts(0);
        assert_eq!(zero.delays().collect::<Vec<_>>(), [Duration::ZERO]);
        assert_eq!(RetryPolicy::once().delays().count(), 1);
        assert_eq!(RetryPolicy::hypeman(), RetryPolicy::once());
    }

    #[test]
    fn budget_cuts_the_pure_schedule() {
        let kata = RetryPolicy::kata();
        let total: Duration = kata.delays().sum();
        assert!(total <= KATA_DIAL_TIMEOUT);
        assert_eq!(kata.delays().count(), 3001); // the first attempt + 30 s / 10 ms
    }

    #[test]
    fn jitter_stays_in_range_and_under_the_cap() {
        let base = RetryPolicy::constant(3, MS(1000)).with_cap(MS(1100));
        assert_eq!(base.jittered(MS(1000), 12345), MS(1000));
        let full = base.with_jitter(Jitter::Full);
        assert_eq!(full.jittered(MS(1000), 0), Duration::ZERO);
        assert!(full.jittered(MS(1000), u64::MAX) <= MS(1000));
        let spread = base.with_jitter(Jitter::Spread { percent: 20 });
        assert_eq!(spread.jittered(MS(1000), 0), MS(800));
        assert_eq!(spread.jittered(MS(1000), u64::MAX), MS(1100)); // 1200 clamped to the cap
        for sample in [1u64, 1 << 20, 1 << 40, 1 << 63, u64::MAX / 3] {
            let d = spread.jittered(MS(1000), sample);
            assert!(d >= MS(800) && d <= MS(1100), "{d:?}");
        }
        let wide = base.with_jitter(Jitter::Spread { percent: 255 });
        assert_eq!(wide.jittered(MS(1000), 0), Duration::ZERO);
    }

    #[test]
    fn deadline_presets() {
        let lq = Deadlines::limiquantix();
        assert_eq!(lq.request, Some(Duration::from_secs(30)));
        assert_eq!(lq.ping_or_request(), Some(Duration::from_secs(5)));
        assert_eq!(
            lq.execute(Duration::from_secs(60)),
            Some(Duration::from_secs(65))
        );
        let hm = Deadlines::hypeman();
        assert_eq!(
            (hm.connect, hm.handshake),
            (Some(Duration::from_secs(5)), Some(Duration::from_secs(5)))
        );
        assert_eq!(hm.execute(Duration::from_secs(60)), None);
        assert_eq!(Deadlines::kata().handshake, Some(Duration::from_secs(10)));
        assert_eq!(
            Deadlines::volant().execute(Duration::from_secs(99)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(Deadlines::none(), Deadlines::default());
    }

    #[test]
    fn display_lists_every_attempt_and_elides_long_runs() {
        let err = RetryError {
            attempts: vec!["refused", "refused", "EOF"],
            reason: GiveUp::Exhausted,
        };
        assert_eq!(
            err.to_string(),
            "gave up after 3 attempts (attempts exhausted): #1: refused; #2: refused; #3: EOF"
        );
        let long = RetryError {
            attempts: (0..40).collect::<Vec<u32>>(),
            reason: GiveUp::Budget,
        };
        let text = long.to_string();
        assert!(text.contains("#8: 7; … 24 more …; #33: 32"), "{text}");
        assert!(text.ends_with("#40: 39"));
    }

    /// Records when each attempt starts, relative to `start`.
    struct Probe {
        start: Instant,
        starts: Vec<Duration>,
    }

    impl Probe {
        fn new() -> Self {
            Self {
                start: Instant::now(),
                starts: Vec::new(),
            }
        }

        fn gaps(&self) -> Vec<Duration> {
            let mut prev = Duration::ZERO;
            self.starts
                .iter()
                .map(|&t| {
                    let gap = t - prev;
                    prev = t;
                    gap
                })
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn observed_schedule_is_0_100_200_400_800() {
        let mut probe = Probe::new();
        let result: Result<(), _> = retry(&RetryPolicy::firecracker_dial(), || {
            probe.starts.push(probe.start.elapsed());
            let n = probe.starts.len();
            async move { Err(format!("dial {n}: connection refused")) }
        })
        .await;
        let err = result.expect_err("every attempt fails");
        assert_eq!(err.attempts.len(), 5);
        assert_eq!(err.reason, GiveUp::Exhausted);
        assert_eq!(probe.gaps(), [MS(0), MS(100), MS(200), MS(400), MS(800)]);
        assert_eq!(probe.start.elapsed(), MS(1500)); // no sleep after the last attempt
        assert!(err.to_string().contains("#5: dial 5: connection refused"));
    }

    #[tokio::test(start_paused = true)]
    async fn observed_delays_respect_the_cap() {
        let mut probe = Probe::new();
        let policy = RetryPolicy::exponential(5, MS(100), 4).with_cap(MS(500));
        let _ = retry(&policy, || {
            probe.starts.push(probe.start.elapsed());
            async { Err::<(), _>("nope") }
        })
        .await;
        assert_eq!(probe.gaps(), [MS(0), MS(100), MS(400), MS(500), MS(500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_error_stops_at_once() {
        let mut probe = Probe::new();
        let result: Result<(), _> = retry_if(
            &RetryPolicy::firecracker_dial(),
            |e: &&str| !e.starts_with("fatal"),
            || {
                probe.starts.push(probe.start.elapsed());
                async { Err("fatal: reply did not start with \"OK \"") }
            },
        )
        .await;
        let err = result.expect_err("fatal error");
        assert_eq!(err.reason, GiveUp::NotRetryable);
        assert_eq!(err.attempts.len(), 1);
        assert_eq!(probe.starts, [Duration::ZERO]);
        assert_eq!(probe.start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_on_the_third_attempt() {
        let mut probe = Probe::new();
        let result = retry(&RetryPolicy::firecracker_dial(), || {
            probe.starts.push(probe.start.elapsed());
            let n = probe.starts.len();
            async move { if n == 3 { Ok(n) } else { Err("refused") } }
        })
        .await;
        assert_eq!(result.expect("third attempt succeeds"), 3);
        assert_eq!(probe.gaps(), [MS(0), MS(100), MS(200)]);
        assert_eq!(probe.start.elapsed(), MS(300));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_stops_before_a_wait_that_would_overrun_it() {
        let mut probe = Probe::new();
        let policy = RetryPolicy::constant(100, MS(300)).with_budget(MS(1000));
        let result: Result<(), _> = retry(&policy, || {
            probe.starts.push(probe.start.elapsed());
            async {
                tokio::time::sleep(MS(50)).await; // each attempt takes time too
                Err("refused")
            }
        })
        .await;
        let err = result.expect_err("budget spent");
        assert_eq!(err.reason, GiveUp::Budget);
        // Attempts start at 0, 350, 700; the next would start at 1050 > 1000.
        assert_eq!(probe.starts, [MS(0), MS(350), MS(700)]);
        assert_eq!(probe.start.elapsed(), MS(750));
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_waits_stay_within_the_spread() {
        let mut probe = Probe::new();
        let policy = RetryPolicy::constant(20, MS(100)).with_jitter(Jitter::Spread { percent: 50 });
        let _ = retry(&policy, || {
            probe.starts.push(probe.start.elapsed());
            async { Err::<(), _>("refused") }
        })
        .await;
        let gaps = probe.gaps();
        assert_eq!(gaps.len(), 20);
        assert!(
            gaps[1..].iter().all(|g| *g >= MS(50) && *g <= MS(150)),
            "{gaps:?}"
        );
    }
}
