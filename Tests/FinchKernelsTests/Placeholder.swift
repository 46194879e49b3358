import XCTest
final class FinchKernelsTestsPlaceholder: XCTestCase { func testBuilds() {} }
