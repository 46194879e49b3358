import XCTest
final class FinchDataTestsPlaceholder: XCTestCase { func testBuilds() {} }
