extension UInt64 {
    /// `self + x`, or `UInt64.max` when the sum would overflow: a byte total that a hostile
    /// size cannot wrap around to something small.
    public func addingSaturating(_ x: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(x)
        return overflow ? .max : sum
    }
}
