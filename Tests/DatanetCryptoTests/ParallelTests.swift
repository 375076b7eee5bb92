import DatanetCrypto
import Testing

/// Order-preserving parallel map and background work: results in input order, the lowest
/// failing slice's error, and a started job's result or error delivered to its waiter.
@Suite struct ParallelTests {
    struct Failure: Error, Equatable { let at: Int }

    @Test func mapKeepsOrderAndReportsTheFirstFailure() throws {
        let items = Array(0..<10_000)
        #expect(try Parallel.map(items, grain: 1) { $0 * 3 } == items.map { $0 * 3 })
        #expect(try Parallel.map([Int]()) { $0 }.isEmpty)
        #expect(throws: Failure(at: 17)) {
            try Parallel.map(items, grain: 1) { i -> Int in if i == 17 || i == 9_000 { throw Failure(at: i) }; return i }
        }
    }

    @Test func startedWorkDeliversItsResultOrError() throws {
        let sum = Parallel.start { (0..<100_000).reduce(0, +) }
        let failing = Parallel.start { () throws -> Int in throw Failure(at: 1) }
        #expect(try sum.wait() == 4_999_950_000)
        #expect(try sum.wait() == 4_999_950_000) // a second wait returns the same result
        #expect(throws: Failure(at: 1)) { try failing.wait() }
    }

    @Test func pipelineConsumesEverySliceInOrderAndStopsAtTheFirstFailure() throws {
        let items = Array(0..<1_000)
        for chunk in [1, 7, 256, 5_000] {
            var seen = [Int](), ranges = [Range<Int>]()
            try Parallel.pipeline(items, chunk: chunk, { slice in slice.map { $0 * 2 } }, consume: { r, range in
                seen += r
                ranges.append(range)
            })
            #expect(seen == items.map { $0 * 2 })
            #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == items.count)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        }
        var none = 0
        try Parallel.pipeline([Int](), chunk: 8, { $0.map { $0 } }, consume: { _, _ in none += 1 })
        #expect(none == 0)
        // A failing slice: the slices before it are consumed, none after, and its error is the one thrown.
        var consumed = [Int]()
        #expect(throws: Failure(at: 530)) {
            try Parallel.pipeline(items, chunk: 100, { slice in
                try slice.map { i -> Int in if i == 530 || i == 910 { throw Failure(at: i) }; return i }
            }, consume: { r, _ in consumed += r })
        }
        #expect(consumed == Array(0..<500))
        // The consumer's error stops the pipeline the same way.
        var calls = 0
        #expect(throws: Failure(at: -1)) {
            try Parallel.pipeline(items, chunk: 100, { $0.map { $0 } }, consume: { _, range in
                calls += 1
                if range.lowerBound == 300 { throw Failure(at: -1) }
            })
        }
        #expect(calls == 4)
    }

    /// Every index is visited once, in chunks of at most `chunk` that tile the range.
    @Test func chunksCoverTheRangeOnce() {
        for (count, chunk) in [(0, 8), (1, 8), (8, 8), (9, 8), (10_000, 64), (10_000, 1), (7, 100)] {
            let visits = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, count))
            defer { visits.deallocate() }
            visits.initialize(repeating: 0)
            let sizes = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(1, count))
            defer { sizes.deallocate() }
            sizes.initialize(repeating: -1)
            Parallel.forEachChunk(of: count, chunk: chunk) { part in
                sizes[part.lowerBound] = part.count // each chunk's own slot: no two chunks share one
                for i in part { visits[i] += 1 }
            }
            #expect(visits.prefix(count).allSatisfy { $0 == 1 }, "\(count) in chunks of \(chunk)")
            let starts = (0..<count).filter { sizes[$0] >= 0 }
            #expect(starts.allSatisfy { sizes[$0] <= chunk && sizes[$0] > 0 } && starts.count == (count + chunk - 1) / chunk)
        }
    }
}
