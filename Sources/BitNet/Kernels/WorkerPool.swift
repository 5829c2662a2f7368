import CKernels

/// A persistent pool of kernel threads (CKernels' bn_pool). The caller's
/// thread is worker 0, so a pool of `threads` starts `threads - 1` threads
/// once; each matrix call then costs a fraction of a microsecond to dispatch
/// (see `make test-c` output) instead of a thread start.
package final class WorkerPool: @unchecked Sendable {
    let pool: OpaquePointer
    package let threads: Int

    package init(threads: Int) throws {
        guard threads >= 1, threads <= 1024, let pool = bn_pool_create(Int32(threads)) else {
            throw KernelError.threadPoolUnavailable(threads: threads)
        }
        self.pool = pool
        self.threads = threads
    }

    deinit { bn_pool_destroy(pool) }

    /// Runs `task(context, ith, nth)` once on each of `threads` threads (default: all)
    /// and returns when all have finished. The task must not throw or capture.
    package func run(threads nth: Int? = nil, _ task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void,
                    context: UnsafeMutableRawPointer?) {
        bn_pool_run_n(pool, task, context, Int32(min(max(nth ?? threads, 1), threads)))
    }
}
