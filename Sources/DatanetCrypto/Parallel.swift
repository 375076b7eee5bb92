import Dispatch
import Glibc

/// Order-preserving work across the machine's cores, for pure per-item work (signature
/// checks, decoding, leaf hashing) that dominates batch jobs.
public enum Parallel {
    /// Active processors, read once.
    public static let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// `items.map(body)` computed by contiguous slices on up to `cores` threads. Inputs shorter
    /// than `grain` per thread run inline. When items throw, the error of the lowest-indexed
    /// failing slice is rethrown, as the serial map would mostly report.
    public static func map<T, R>(_ items: [T], grain: Int = 64, _ body: (T) throws -> R) throws -> [R] {
        let threads = min(cores, items.count / max(1, grain))
        guard threads > 1 else { return try items.map(body) }
        var slices = [Result<[R], any Error>?](repeating: nil, count: threads)
        slices.withUnsafeMutableBufferPointer { out in
            items.withUnsafeBufferPointer { input in
                // The closure runs on Dispatch's threads but only touches disjoint slots of
                // `out` and reads `input`; both outlive concurrentPerform, which waits.
                withoutActuallyEscaping(body) { body in
                    let shared = UnsafeSendable((out, input, body))
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        let (out, input, body) = shared.value
                        // Even parts by integer division: never empty or reversed.
                        let range = (input.count * t / threads)..<(input.count * (t + 1) / threads)
                        out[t] = Result { try input[range].map(body) }
                    }
                }
            }
        }
        var result = [R]()
        result.reserveCapacity(items.count)
        for s in slices { result += try s!.get() }
        return result
    }
}

extension Parallel {
    /// Work started on another thread, whose result the starter collects with `wait()`: for
    /// overlapping pure work (building the next batch) with I/O on the calling thread.
    public final class Running<R>: @unchecked Sendable {
        // Written once by the worker before it signals; read only after the wait.
        private var result: Result<R, any Error>?
        private let done = DispatchSemaphore(value: 0)

        fileprivate init() {}

        /// Whether the work has finished (so `wait()` would not block).
        public var isFinished: Bool {
            guard done.wait(timeout: .now()) == .success else { return false }
            done.signal()
            return true
        }

        /// Blocks until the work has finished; returns its result or rethrows its error.
        public func wait() throws -> R {
            done.wait()
            done.signal() // a second wait returns at once
            return try result!.get()
        }

        fileprivate func finish(_ r: Result<R, any Error>) {
            result = r
            done.signal()
        }
    }

    /// Starts `body` on a Dispatch worker thread. `body` must only read what the caller leaves
    /// untouched until `wait()` returns.
    public static func start<R>(_ body: @escaping () throws -> R) -> Running<R> {
        let running = Running<R>()
        let work = UnsafeSendable(body)
        DispatchQueue.global().async { running.finish(Result { try work.value() }) }
        return running
    }
}

extension Parallel {
    /// Maps `items` in slices of `chunk` on worker threads, up to `ahead` slices ahead of the
    /// calling thread, which consumes each slice's results in order: pure work overlapped with
    /// a serial writer. When `body` or `consume` throws, the work in flight is waited for and the
    /// first error in slice order is rethrown; `consume` sees no slice after a failing one.
    public static func pipeline<T, R>(_ items: [T], chunk: Int, ahead: Int = cores,
                                      _ body: @escaping (ArraySlice<T>) throws -> [R],
                                      consume: ([R], Range<Int>) throws -> Void) throws {
        let step = max(1, chunk)
        let ranges = stride(from: 0, to: items.count, by: step).map { $0..<min(items.count, $0 + step) }
        var running = [Running<[R]>]()
        running.reserveCapacity(ranges.count)
        func launch(_ k: Int) { running.append(start { try body(items[ranges[k]]) }) }
        // Workers read `items` (a copy the closures hold) and write only their own results;
        // none outlives this call.
        defer { for r in running { _ = try? r.wait() } }
        for k in 0..<min(max(1, ahead), ranges.count) { launch(k) }
        for k in ranges.indices {
            let results = try running[k].wait()
            if running.count < ranges.count { launch(running.count) }
            try consume(results, ranges[k])
        }
    }
}

extension Parallel {
    /// Runs `body` on contiguous parts of 0..<count, one a thread on up to `cores` threads, and
    /// waits: for pure work whose parts touch disjoint memory. Below `grain` a thread, inline.
    public static func forEachPart(of count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(cores, count / max(1, grain))
        guard threads > 1 else { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                // Parts as even as integer division makes them: never empty or reversed.
                shared.value((count * t / threads)..<(count * (t + 1) / threads))
            }
        }
    }
}

extension Parallel {
    /// Runs `body` on consecutive chunks of 0..<count of at most `chunk` each, claimed by the
    /// cores as they come free, and waits: for pure work on disjoint memory where a core slowed
    /// by another process should not hold the other back. One chunk runs inline.
    public static func forEachChunk(of count: Int, chunk: Int, _ body: (Range<Int>) -> Void) {
        let size = max(1, chunk), chunks = (count + size - 1) / size
        guard chunks > 1 else { body(0..<count); return }
        guard cores > 1 else {
            for c in 0..<chunks { body((c * size)..<min(count, (c + 1) * size)) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                shared.value((c * size)..<min(count, (c + 1) * size))
            }
        }
    }
}

/// A value handed to concurrentPerform's workers under the caller's guarantee of disjoint use.
private struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
