import XCTest
final class FinchModelTestsPlaceholder: XCTestCase { func testBuilds() {} }
