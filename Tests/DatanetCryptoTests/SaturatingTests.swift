import DatanetCrypto
import Testing

/// Byte totals saturate at the top instead of wrapping (a hostile size cannot make a total small).
@Suite struct SaturatingTests {
    @Test func sumsStopAtTheTop() {
        #expect(UInt64(2).addingSaturating(3) == 5)
        #expect(UInt64(0).addingSaturating(.max) == .max)
        #expect((UInt64.max - 1).addingSaturating(1) == .max)
        #expect((UInt64.max - 1).addingSaturating(2) == .max)
        #expect(UInt64.max.addingSaturating(.max) == .max)
        #expect([UInt64(1) << 63, 1 << 63, 5].reduce(0) { $0.addingSaturating($1) } == .max)
    }
}
