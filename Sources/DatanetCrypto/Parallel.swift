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
        let per = (items.count + threads - 1) / threads
        var slices = [Result<[R], any Error>?](repeating: nil, count: threads)
        slices.withUnsafeMutableBufferPointer { out in
            items.withUnsafeBufferPointer { input in
                // The closure runs on Dispatch's threads but only touches disjoint slots of
                // `out` and reads `input`; both outlive concurrentPerform, which waits.
                withoutActuallyEscaping(body) { body in
                    let shared = UnsafeSendable((out, input, body))
                    DispatchQueue.concurrentPerform(iterations: threads) { t in
                        let (out, input, body) = shared.value
                        let range = (t * per)..<min(input.count, (t + 1) * per)
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

/// A value handed to concurrentPerform's workers under the caller's guarantee of disjoint use.
private struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
