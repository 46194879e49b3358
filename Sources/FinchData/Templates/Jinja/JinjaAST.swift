import Foundation

/// An expression node with its template line.
final class JExpr {
    indirect enum Kind {
        case literal(JinjaValue)
        case name(String)
        case list([JExpr])
        case tuple([JExpr])
        case dict([(JExpr, JExpr)])
        case getattr(JExpr, String)
        case getitem(JExpr, JExpr)
        case slice(JExpr?, JExpr?, JExpr?)
        case call(JExpr, [JExpr], [(String, JExpr)])
        /// `value | name(args)`; value nil inside filter blocks and set blocks (the body is the value).
        case filter(JExpr?, String, [JExpr], [(String, JExpr)])
        case test(JExpr, String, [JExpr], [(String, JExpr)])
        case neg(JExpr)
        case pos(JExpr)
        case not(JExpr)
        case and(JExpr, JExpr)
        case or(JExpr, JExpr)
        case binary(String, JExpr, JExpr)
        case concat([JExpr])
        case compare(JExpr, [(String, JExpr)])
        case condExpr(JExpr, JExpr, JExpr?) // test, then, else
    }
    let kind: Kind
    let line: Int
    init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }
}

/// An assignment target: a name, `ns.attr`, or a tuple of targets.
indirect enum JTarget {
    case name(String)
    case nsAttr(String, String)
    case tuple([JTarget])
}

/// A statement node.
indirect enum JStmt {
    case output(String)
    case print(JExpr)
    case ifStmt([(JExpr, [JStmt])], [JStmt], line: Int)
    case forStmt(target: JTarget, iter: JExpr, filter: JExpr?, body: [JStmt], elseBody: [JStmt], line: Int)
    case set(JTarget, JExpr, line: Int)
    case setBlock(JTarget, filter: JExpr?, body: [JStmt], line: Int)
    case macro(name: String, params: [(String, JExpr?)], body: [JStmt], line: Int)
    case callBlock(call: JExpr, params: [(String, JExpr?)], body: [JStmt], line: Int)
    case filterBlock(filter: JExpr, body: [JStmt], line: Int)
    case with([(JTarget, JExpr)], body: [JStmt], line: Int)
    case generation(body: [JStmt], line: Int)
    case breakStmt(line: Int)
    case continueStmt(line: Int)
}
