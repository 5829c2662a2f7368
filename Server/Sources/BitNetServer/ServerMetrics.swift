import BitNet
import Metrics
import Prometheus

/// The server's metrics through swift-metrics, kept in a Prometheus registry of
/// this server's own (not the process-wide `MetricsSystem`, so several servers —
/// tests — each count their own) and rendered by `GET /metrics`.
///
/// - `bitnet_http_requests_total{route,status}`
/// - `bitnet_prompt_tokens_total`, `bitnet_prompt_tokens_cached_total`, `bitnet_generated_tokens_total`
/// - `bitnet_requests_cancelled_total{reason}` (client gone, server stopping)
/// - histograms `bitnet_time_to_first_token_seconds` (request received → first text),
///   `bitnet_inter_token_latency_seconds` (between text pieces of one request)
/// - gauges sampled from ``BatchScheduler/snapshot`` at each scrape: `bitnet_slots`,
///   `bitnet_slots_active`, `bitnet_queue_waiting`, `bitnet_batch_rows` (last step),
///   `bitnet_kv_positions_used`, `bitnet_kv_positions_total`
/// - `bitnet_http_connections_total` (accepted) and `bitnet_http_connections_open`, sampled likewise
/// - per scheduler step, from ``BatchScheduler/Configuration/onStep`` (``recordStep(_:)``): histograms
///   `bitnet_step_sequences` (batch size), `bitnet_step_rows` (tokens computed) and `bitnet_step_seconds`
///
/// Made before the scheduler (whose `onStep` must be given at its creation) and handed to
/// ``BitNetServer``; see ``stepObserver``.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    let promptTokens: Metrics.Counter
    let cachedTokens: Metrics.Counter
    let generatedTokens: Metrics.Counter
    let timeToFirstToken: Metrics.Timer
    let interTokenLatency: Metrics.Timer
    private let slots, activeSlots, waiting, batchRows, kvUsed, kvTotal, connectionsOpen: Metrics.Gauge
    private let connectionsAccepted: Metrics.Gauge
    private let stepSequences, stepRows: Metrics.Recorder
    private let stepSeconds: Metrics.Timer

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets = [
            "bitnet_step_sequences": [1, 2, 4, 8, 16, 32, 64, 128],
            "bitnet_step_rows": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
        ]
        factory.durationHistogramBuckets = [
            "bitnet_time_to_first_token_seconds": [.milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                   .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                   .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)],
            "bitnet_inter_token_latency_seconds": [.milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                   .milliseconds(20), .milliseconds(50), .milliseconds(100),
                                                   .milliseconds(200), .milliseconds(500), .seconds(1)],
            "bitnet_step_seconds": [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                    .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                    .milliseconds(500), .seconds(1), .milliseconds(2500)],
        ]
        self.factory = factory
        promptTokens = Metrics.Counter(label: "bitnet_prompt_tokens_total", factory: factory)
        cachedTokens = Metrics.Counter(label: "bitnet_prompt_tokens_cached_total", factory: factory)
        generatedTokens = Metrics.Counter(label: "bitnet_generated_tokens_total", factory: factory)
        timeToFirstToken = Metrics.Timer(label: "bitnet_time_to_first_token_seconds", factory: factory)
        interTokenLatency = Metrics.Timer(label: "bitnet_inter_token_latency_seconds", factory: factory)
        slots = Metrics.Gauge(label: "bitnet_slots", factory: factory)
        activeSlots = Metrics.Gauge(label: "bitnet_slots_active", factory: factory)
        waiting = Metrics.Gauge(label: "bitnet_queue_waiting", factory: factory)
        batchRows = Metrics.Gauge(label: "bitnet_batch_rows", factory: factory)
        kvUsed = Metrics.Gauge(label: "bitnet_kv_positions_used", factory: factory)
        kvTotal = Metrics.Gauge(label: "bitnet_kv_positions_total", factory: factory)
        // a running count read from the connection registry at each scrape: exposed as a gauge
        // with a _total name (swift-metrics counters cannot be set to a value)
        connectionsAccepted = Metrics.Gauge(label: "bitnet_http_connections_total", factory: factory)
        connectionsOpen = Metrics.Gauge(label: "bitnet_http_connections_open", factory: factory)
        stepSequences = Metrics.Recorder(label: "bitnet_step_sequences", dimensions: [], aggregate: true, factory: factory)
        stepRows = Metrics.Recorder(label: "bitnet_step_rows", dimensions: [], aggregate: true, factory: factory)
        stepSeconds = Metrics.Timer(label: "bitnet_step_seconds", factory: factory)
    }

    /// One scheduler step (called on the scheduler's thread: three histogram updates).
    public func recordStep(_ step: BatchScheduler.StepReport) {
        stepSequences.record(step.sequences)
        stepRows.record(step.rows)
        stepSeconds.recordNanoseconds(Int64(step.seconds * 1e9))
    }

    /// For ``BatchScheduler/Configuration/onStep``.
    public var stepObserver: @Sendable (BatchScheduler.StepReport) -> Void {
        { [self] in recordStep($0) }
    }

    func request(route: String, status: Int) {
        Metrics.Counter(label: "bitnet_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                factory: factory).increment()
    }

    func cancelled(reason: String) {
        Metrics.Counter(label: "bitnet_requests_cancelled_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    func completed(_ outcome: CompletionOutcome) {
        promptTokens.increment(by: outcome.promptTokens)
        cachedTokens.increment(by: outcome.cachedTokens)
        generatedTokens.increment(by: outcome.completionTokens)
    }

    /// The Prometheus text exposition, gauges sampled now.
    func render(_ snapshot: BatchScheduler.Snapshot, connections: (accepted: Int, open: Int)) -> [UInt8] {
        connectionsAccepted.record(connections.accepted)
        connectionsOpen.record(connections.open)
        slots.record(snapshot.slots)
        activeSlots.record(snapshot.activeSlots)
        waiting.record(snapshot.waiting)
        batchRows.record(snapshot.lastStepRows)
        kvUsed.record(snapshot.cachedPositions)
        kvTotal.record(snapshot.totalPositions)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
