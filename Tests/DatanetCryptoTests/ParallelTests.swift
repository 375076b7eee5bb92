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
}
