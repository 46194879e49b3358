import XCTest
final class FinchTrainTestsPlaceholder: XCTestCase { func testBuilds() {} }
