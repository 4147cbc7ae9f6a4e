//! The PromQL parser: tokens → [`Expr`], with Prometheus's precedence,
//! modifiers and type checks (`checkAST`), and its error messages where
//! users meet them.
//!
//! Precedence, lowest first: `or`; `and` `unless`; comparisons and the
//! histogram trim operators `</` `>/`; `+` `-`; `*` `/` `%` `atan2`; `^`
//! (right-associative). Unary minus binds like `*` (so `-2^2` is −4), and a
//! minus before a number literal folds into the literal. Postfix modifiers
//! (`[range]`, `[range:step]`, `offset`, `@`) bind tightest.
//!
//! Durations: inside `[…]` a full duration expression (`5m+1m`, `step()*2`,
//! `min_of(step(), 1h)`, plain numbers are seconds); after `offset` a signed
//! primary (literal, duration function call or parenthesised expression),
//! so `x offset 1m + 2` is `(x offset 1m) + 2` as in Prometheus.
//!
//! The precedence of the trim operators is our reading of Prometheus 3
//! (they are comparisons of a histogram against a bound); the upstream test
//! files use them only at the top level.

use emberlens_model::{MatchOp, Matcher};

use crate::ast::*;
use crate::error::ParseError;
use crate::functions::{FunctionDef, lookup};
use crate::lexer::{Keyword, Punct, Tok, Token, lex};

/// Parses a PromQL expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser { src, toks, i: 0 };
    if matches!(p.peek(), Tok::Eof) {
        return Err(ParseError::at(0, 0, "no expression found in input"));
    }
    let e = p.expr(0)?;
    if !matches!(p.peek(), Tok::Eof) {
        let t = p.tok().clone();
        return Err(p.unexpected(&t, ""));
    }
    check(&e)?;
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
}

/// Binding power of a binary operator token, and the operator.
fn binop(t: &Tok) -> Option<(u8, BinOp)> {
    Some(match t {
        Tok::Keyword(Keyword::Or) => (1, BinOp::Or),
        Tok::Keyword(Keyword::And) => (2, BinOp::And),
        Tok::Keyword(Keyword::Unless) => (2, BinOp::Unless),
        Tok::Punct(Punct::EqlC) => (3, BinOp::Eql),
        Tok::Punct(Punct::Neq) => (3, BinOp::Neq),
        Tok::Punct(Punct::Lss) => (3, BinOp::Lss),
        Tok::Punct(Punct::Lte) => (3, BinOp::Lte),
        Tok::Punct(Punct::Gtr) => (3, BinOp::Gtr),
        Tok::Punct(Punct::Gte) => (3, BinOp::Gte),
        Tok::Punct(Punct::TrimUpper) => (3, BinOp::TrimUpper),
        Tok::Punct(Punct::TrimLower) => (3, BinOp::TrimLower),
        Tok::Punct(Punct::Add) => (4, BinOp::Add),
        Tok::Punct(Punct::Sub) => (4, BinOp::Sub),
        Tok::Punct(Punct::Mul) => (5, BinOp::Mul),
        Tok::Punct(Punct::Div) => (5, BinOp::Div),
        Tok::Punct(Punct::Mod) => (5, BinOp::Mod),
        Tok::Keyword(Keyword::Atan2) => (5, BinOp::Atan2),
        Tok::Punct(Punct::Pow) => (6, BinOp::Pow),
        _ => return None,
    })
}

const UNARY_BP: u8 = 5;
const POW_BP: u8 = 6;

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier {s:?}"),
        Tok::Keyword(k) if k.is_aggregator() => format!("aggregation {:?}", k.as_str()),
        Tok::Keyword(k) => format!("keyword {:?}", k.as_str()),
        Tok::Number(_) => "number".into(),
        Tok::Duration(_) => "duration".into(),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Punct(Punct::LParen) => "\"(\"".into(),
        Tok::Punct(Punct::RParen) => "\")\"".into(),
        Tok::Punct(Punct::LBrace) => "\"{\"".into(),
        Tok::Punct(Punct::RBrace) => "\"}\"".into(),
        Tok::Punct(Punct::LBracket) => "\"[\"".into(),
        Tok::Punct(Punct::RBracket) => "\"]\"".into(),
        Tok::Punct(Punct::Comma) => "\",\"".into(),
        Tok::Punct(Punct::Colon) => "\":\"".into(),
        Tok::Punct(Punct::At) => "\"@\"".into(),
        Tok::Punct(Punct::Assign) => "\"=\"".into(),
        Tok::Punct(p) => format!("operator {:?}", p.as_str()),
        Tok::Eof => "end of input".into(),
    }
}

impl<'a> Parser<'a> {
    fn tok(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.tok().tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.tok().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.toks[self.i - 1].end
        }
    }

    fn text(&self, t: &Token) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    fn unexpected(&self, t: &Token, context: &str) -> ParseError {
        let what = describe(&t.tok);
        let msg = if context.is_empty() {
            format!("unexpected {what}")
        } else {
            format!("unexpected {what} in {context}")
        };
        ParseError::at(t.start, t.end, msg)
    }

    fn expect(&mut self, p: Punct, context: &str) -> Result<Token, ParseError> {
        if self.peek() == &Tok::Punct(p) {
            Ok(self.bump())
        } else {
            let t = self.tok().clone();
            let mut e = self.unexpected(&t, context);
            e.msg.push_str(&format!(", expected \"{}\"", p.as_str()));
            Err(e)
        }
    }

    /// Precedence climbing over binary operators.
    fn expr(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Some((bp, op)) = binop(self.peek()) {
            if bp < min_bp {
                break;
            }
            self.bump();
            let (matching, return_bool, fill) = self.bin_modifiers(op)?;
            // `^` is right-associative: the right side may hold another `^`.
            let next_bp = if op == BinOp::Pow { bp } else { bp + 1 };
            let rhs = self.expr(next_bp)?;
            let pos = PosRange::new(lhs.pos().start, rhs.pos().end);
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching,
                return_bool,
                fill,
                pos,
            });
        }
        Ok(lhs)
    }

    fn bin_modifiers(
        &mut self,
        op: BinOp,
    ) -> Result<(Option<VectorMatching>, bool, Fill), ParseError> {
        let mut return_bool = false;
        if self.peek() == &Tok::Keyword(Keyword::Bool) {
            self.bump();
            return_bool = true;
        }
        let mut matching = None;
        if let Tok::Keyword(k @ (Keyword::On | Keyword::Ignoring)) = *self.peek() {
            self.bump();
            let labels = self.grouping_labels()?;
            matching = Some(VectorMatching {
                card: Cardinality::OneToOne,
                labels,
                on: k == Keyword::On,
                include: Vec::new(),
            });
            if let Tok::Keyword(g @ (Keyword::GroupLeft | Keyword::GroupRight)) = *self.peek() {
                self.bump();
                let include = if self.peek() == &Tok::Punct(Punct::LParen) {
                    self.grouping_labels()?
                } else {
                    Vec::new()
                };
                if let Some(m) = matching.as_mut() {
                    m.card = if g == Keyword::GroupLeft {
                        Cardinality::ManyToOne
                    } else {
                        Cardinality::OneToMany
                    };
                    m.include = include;
                }
            }
        }
        let mut fill = Fill::default();
        while let Tok::Keyword(k @ (Keyword::Fill | Keyword::FillLeft | Keyword::FillRight)) =
            *self.peek()
        {
            if self.peek_at(1) != &Tok::Punct(Punct::LParen) {
                break;
            }
            self.bump();
            self.bump();
            let v = self.signed_number("fill modifier")?;
            self.expect(Punct::RParen, "fill modifier")?;
            match k {
                Keyword::Fill => {
                    fill.left = Some(v);
                    fill.right = Some(v);
                }
                Keyword::FillLeft => fill.left = Some(v),
                _ => fill.right = Some(v),
            }
        }
        if op.is_set() {
            let m = matching.get_or_insert_with(|| VectorMatching {
                card: Cardinality::ManyToMany,
                labels: Vec::new(),
                on: false,
                include: Vec::new(),
            });
            if m.card == Cardinality::OneToOne {
                m.card = Cardinality::ManyToMany;
            }
        }
        Ok((matching, return_bool, fill))
    }

    fn signed_number(&mut self, context: &str) -> Result<f64, ParseError> {
        let mut sign = 1.0;
        if let Tok::Punct(p @ (Punct::Add | Punct::Sub)) = *self.peek() {
            self.bump();
            if p == Punct::Sub {
                sign = -1.0;
            }
        }
        match *self.peek() {
            Tok::Number(v) => {
                self.bump();
                Ok(sign * v)
            }
            Tok::Duration(ms) => {
                self.bump();
                Ok(sign * ms as f64 / 1000.0)
            }
            _ => {
                let t = self.tok().clone();
                Err(self.unexpected(&t, context))
            }
        }
    }

    /// `( label, … )`; labels may be keywords or quoted strings.
    fn grouping_labels(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Punct::LParen, "grouping opts")?;
        let mut out = Vec::new();
        loop {
            let t = self.tok().clone();
            match &t.tok {
                Tok::Punct(Punct::RParen) => {
                    self.bump();
                    return Ok(out);
                }
                Tok::Ident(s) => {
                    if s.contains(':') {
                        return Err(self.unexpected(&t, "grouping opts"));
                    }
                    out.push(s.clone());
                }
                Tok::Keyword(_) => out.push(self.text(&t).to_string()),
                Tok::Str(s) => out.push(s.clone()),
                // Prometheus accepts `inf`/`nan` as label names here.
                Tok::Number(_) if self.text(&t).chars().all(|c| c.is_ascii_alphabetic()) => {
                    out.push(self.text(&t).to_string())
                }
                _ => {
                    let mut e = self.unexpected(&t, "grouping opts");
                    e.msg.push_str(", expected label");
                    return Err(e);
                }
            }
            self.bump();
            match self.peek() {
                Tok::Punct(Punct::Comma) => {
                    self.bump();
                }
                Tok::Punct(Punct::RParen) => {}
                _ => {
                    let t = self.tok().clone();
                    let mut e = self.unexpected(&t, "grouping opts");
                    e.msg.push_str(", expected \",\" or \")\"");
                    return Err(e);
                }
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if let Tok::Punct(p @ (Punct::Add | Punct::Sub)) = *self.peek() {
            let t = self.bump();
            // Unary binds like `*`: only `^` (and postfix) is tighter.
            let operand = self.expr(POW_BP.max(UNARY_BP + 1))?;
            let neg = p == Punct::Sub;
            let pos = PosRange::new(t.start, operand.pos().end);
            if let Expr::Number { val, .. } = operand {
                return Ok(Expr::Number {
                    val: if neg { -val } else { val },
                    pos,
                });
            }
            return Ok(Expr::Unary {
                neg,
                expr: Box::new(operand),
                pos,
            });
        }
        let e = self.primary()?;
        self.postfix(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let t = self.tok().clone();
        match &t.tok {
            Tok::Number(v) => {
                self.bump();
                Ok(Expr::Number {
                    val: *v,
                    pos: PosRange::new(t.start, t.end),
                })
            }
            Tok::Duration(ms) => {
                self.bump();
                Ok(Expr::Number {
                    val: *ms as f64 / 1000.0,
                    pos: PosRange::new(t.start, t.end),
                })
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::String {
                    val: s.clone(),
                    pos: PosRange::new(t.start, t.end),
                })
            }
            Tok::Punct(Punct::LParen) => {
                self.bump();
                let inner = self.expr(0)?;
                let close = self.expect(Punct::RParen, "paren expression")?;
                Ok(Expr::Paren {
                    expr: Box::new(inner),
                    pos: PosRange::new(t.start, close.end),
                })
            }
            Tok::Punct(Punct::LBrace) => self.selector(None, t.start),
            Tok::Keyword(k) if k.is_aggregator() => self.aggregate(*k, &t),
            Tok::Keyword(k @ (Keyword::Start | Keyword::End))
                if self.peek_at(1) == &Tok::Punct(Punct::LParen) =>
            {
                self.bump();
                self.call(k.as_str(), &t)
            }
            Tok::Ident(name) => {
                self.bump();
                if self.peek() == &Tok::Punct(Punct::LParen) {
                    return self.call(name, &t);
                }
                self.selector(Some(name.clone()), t.start)
            }
            // Modifier keywords are ordinary metric names where no modifier
            // can stand (`fill + fill(0) other`).
            Tok::Keyword(
                Keyword::Fill
                | Keyword::FillLeft
                | Keyword::FillRight
                | Keyword::Anchored
                | Keyword::Smoothed
                | Keyword::Start
                | Keyword::End,
            ) => {
                self.bump();
                let name = self.text(&t).to_string();
                self.selector(Some(name), t.start)
            }
            _ => Err(self.unexpected(&t, "")),
        }
    }

    fn call(&mut self, name: &str, name_tok: &Token) -> Result<Expr, ParseError> {
        let Some(func) = lookup(name) else {
            return Err(ParseError::at(
                name_tok.start,
                name_tok.end,
                format!("unknown function with name {name:?}"),
            ));
        };
        self.expect(Punct::LParen, "function call")?;
        let mut args = Vec::new();
        if self.peek() != &Tok::Punct(Punct::RParen) {
            loop {
                args.push(self.expr(0)?);
                match self.peek() {
                    Tok::Punct(Punct::Comma) => {
                        let c = self.bump();
                        if self.peek() == &Tok::Punct(Punct::RParen) {
                            return Err(ParseError::at(
                                c.start,
                                c.end,
                                "trailing commas not allowed in function call args",
                            ));
                        }
                    }
                    _ => break,
                }
            }
        }
        let close = self.expect(Punct::RParen, "function call")?;
        Ok(Expr::Call(Call {
            func,
            args,
            pos: PosRange::new(name_tok.start, close.end),
        }))
    }

    fn aggregate(&mut self, k: Keyword, t: &Token) -> Result<Expr, ParseError> {
        self.bump();
        let op = match k {
            Keyword::Sum => AggOp::Sum,
            Keyword::Avg => AggOp::Avg,
            Keyword::Count => AggOp::Count,
            Keyword::Min => AggOp::Min,
            Keyword::Max => AggOp::Max,
            Keyword::Group => AggOp::Group,
            Keyword::Stddev => AggOp::Stddev,
            Keyword::Stdvar => AggOp::Stdvar,
            Keyword::Topk => AggOp::Topk,
            Keyword::Bottomk => AggOp::Bottomk,
            Keyword::CountValues => AggOp::CountValues,
            Keyword::Quantile => AggOp::Quantile,
            Keyword::Limitk => AggOp::Limitk,
            _ => AggOp::LimitRatio,
        };
        let mut grouping = None;
        let modifier = |p: &mut Self| -> Result<Option<(Vec<String>, bool)>, ParseError> {
            match *p.peek() {
                Tok::Keyword(Keyword::By) => {
                    p.bump();
                    Ok(Some((p.grouping_labels()?, false)))
                }
                Tok::Keyword(Keyword::Without) => {
                    p.bump();
                    Ok(Some((p.grouping_labels()?, true)))
                }
                _ => Ok(None),
            }
        };
        if let Some(g) = modifier(self)? {
            grouping = Some(g);
        }
        if self.peek() != &Tok::Punct(Punct::LParen) {
            let t = self.tok().clone();
            return Err(self.unexpected(&t, "aggregation"));
        }
        self.bump();
        let mut args = Vec::new();
        if self.peek() != &Tok::Punct(Punct::RParen) {
            loop {
                args.push(self.expr(0)?);
                if self.peek() == &Tok::Punct(Punct::Comma) {
                    let c = self.bump();
                    if self.peek() == &Tok::Punct(Punct::RParen) {
                        return Err(ParseError::at(
                            c.start,
                            c.end,
                            "trailing commas not allowed in function call args",
                        ));
                    }
                } else {
                    break;
                }
            }
        }
        let close = self.expect(Punct::RParen, "aggregation")?;
        let mut end = close.end;
        if grouping.is_none()
            && let Some(g) = modifier(self)?
        {
            grouping = Some(g);
            end = self.prev_end();
        }
        let pos = PosRange::new(t.start, end);
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(ParseError::at(
                pos.start,
                pos.end,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().map(Box::new).ok_or_else(|| {
            ParseError::at(pos.start, pos.end, "aggregation without an expression")
        })?;
        let param = args.pop().map(Box::new);
        let (grouping, without) = grouping.unwrap_or_default();
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            pos,
        }))
    }

    /// `name{…}` / `{…}`; the name token (if any) was consumed.
    fn selector(&mut self, name: Option<String>, start: usize) -> Result<Expr, ParseError> {
        let mut matchers = Vec::new();
        let mut name = name;
        let mut end = self.prev_end();
        if self.peek() == &Tok::Punct(Punct::LBrace) {
            self.bump();
            let mut first = true;
            loop {
                let t = self.tok().clone();
                match &t.tok {
                    Tok::Punct(Punct::RBrace) => {
                        self.bump();
                        break;
                    }
                    Tok::Str(s)
                        if first
                            && matches!(
                                self.peek_at(1),
                                Tok::Punct(Punct::Comma | Punct::RBrace)
                            ) =>
                    {
                        // `{"metric.name", …}`: a quoted metric name.
                        self.bump();
                        if let Some(n) = &name {
                            return Err(ParseError::at(
                                t.start,
                                t.end,
                                format!("metric name must not be set twice: {n:?} or {s:?}"),
                            ));
                        }
                        name = Some(s.clone());
                    }
                    Tok::Ident(_) | Tok::Keyword(_) | Tok::Str(_) | Tok::Number(_) => {
                        let label = match &t.tok {
                            Tok::Str(s) => s.clone(),
                            _ => self.text(&t).to_string(),
                        };
                        if matches!(t.tok, Tok::Number(_))
                            && !label.chars().all(|c| c.is_ascii_alphabetic())
                        {
                            return Err(self.unexpected(&t, "label matching"));
                        }
                        self.bump();
                        let op_tok = self.tok().clone();
                        let op = match op_tok.tok {
                            Tok::Punct(Punct::Assign) => MatchOp::Equal,
                            Tok::Punct(Punct::Neq) => MatchOp::NotEqual,
                            Tok::Punct(Punct::EqlRegex) => MatchOp::RegexMatch,
                            Tok::Punct(Punct::NeqRegex) => MatchOp::RegexNoMatch,
                            _ => {
                                let mut e = self.unexpected(&op_tok, "label matching");
                                e.msg.push_str(", expected label matching operator");
                                return Err(e);
                            }
                        };
                        self.bump();
                        let v = self.tok().clone();
                        let Tok::Str(value) = &v.tok else {
                            let mut e = self.unexpected(&v, "label matching");
                            e.msg.push_str(", expected string");
                            return Err(e);
                        };
                        self.bump();
                        let m = Matcher::new(&label, op, value).map_err(|e| {
                            ParseError::at(v.start, v.end, format!("error parsing regexp: {e}"))
                        })?;
                        matchers.push(m);
                    }
                    Tok::Eof => {
                        return Err(ParseError::at(
                            t.start,
                            t.end,
                            "unexpected end of input inside braces",
                        ));
                    }
                    _ => {
                        let mut e = self.unexpected(&t, "label matching");
                        e.msg.push_str(", expected label");
                        return Err(e);
                    }
                }
                first = false;
                match self.peek() {
                    Tok::Punct(Punct::Comma) => {
                        self.bump();
                    }
                    Tok::Punct(Punct::RBrace) => {}
                    _ => {
                        let t = self.tok().clone();
                        let mut e = self.unexpected(&t, "label matching");
                        e.msg.push_str(", expected \",\" or \"}\"");
                        return Err(e);
                    }
                }
            }
            end = self.prev_end();
        }
        if let Some(n) = &name {
            if let Some(other) = matchers.iter().find(|m| m.name == "__name__") {
                return Err(ParseError::at(
                    start,
                    end,
                    format!(
                        "metric name must not be set twice: {n:?} or {:?}",
                        other.value
                    ),
                ));
            }
            let m = Matcher::new("__name__", MatchOp::Equal, n)
                .map_err(|e| ParseError::at(start, end, e.to_string()))?;
            matchers.insert(0, m);
        }
        Ok(Expr::Selector(VectorSelector {
            name,
            matchers,
            offset: None,
            at: None,
            mode: RangeMode::Plain,
            pos: PosRange::new(start, end),
        }))
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        loop {
            match *self.peek() {
                Tok::Punct(Punct::LBracket) => {
                    let open = self.bump();
                    let range = self.duration_expr(0)?;
                    if self.peek() == &Tok::Punct(Punct::Colon) {
                        self.bump();
                        let step = if self.peek() == &Tok::Punct(Punct::RBracket) {
                            None
                        } else {
                            Some(self.duration_expr(0)?)
                        };
                        let close = self.expect(Punct::RBracket, "subquery selector")?;
                        let start = e.pos().start;
                        e = Expr::Subquery(SubqueryExpr {
                            expr: Box::new(e),
                            range,
                            step,
                            offset: None,
                            at: None,
                            pos: PosRange::new(start, close.end),
                        });
                        continue;
                    }
                    let close = self.expect(Punct::RBracket, "subquery or range")?;
                    let Expr::Selector(vs) = e else {
                        return Err(ParseError::at(
                            open.start,
                            close.end,
                            "ranges only allowed for vector selectors",
                        ));
                    };
                    if vs.offset.is_some() {
                        return Err(ParseError::at(
                            open.start,
                            close.end,
                            "no offset modifiers allowed before range",
                        ));
                    }
                    if vs.at.is_some() {
                        return Err(ParseError::at(
                            open.start,
                            close.end,
                            "no @ modifiers allowed before range",
                        ));
                    }
                    let mut end = close.end;
                    let mode = match *self.peek() {
                        Tok::Keyword(Keyword::Anchored) => {
                            end = self.bump().end;
                            RangeMode::Anchored
                        }
                        Tok::Keyword(Keyword::Smoothed) => {
                            end = self.bump().end;
                            RangeMode::Smoothed
                        }
                        _ => RangeMode::Plain,
                    };
                    let start = vs.pos.start;
                    e = Expr::Matrix(MatrixSelector {
                        vs,
                        range,
                        mode,
                        pos: PosRange::new(start, end),
                    });
                }
                Tok::Keyword(k @ (Keyword::Anchored | Keyword::Smoothed))
                    if matches!(e, Expr::Selector(_)) =>
                {
                    let t = self.bump();
                    if let Expr::Selector(vs) = &mut e {
                        vs.mode = if k == Keyword::Anchored {
                            RangeMode::Anchored
                        } else {
                            RangeMode::Smoothed
                        };
                        vs.pos.end = t.end;
                    }
                }
                Tok::Keyword(Keyword::Offset) => {
                    let t = self.bump();
                    let d = self.offset_duration()?;
                    let end = self.prev_end();
                    set_modifier(
                        &mut e,
                        d,
                        |e| match e {
                            Expr::Selector(vs) => Some(&mut vs.offset),
                            Expr::Matrix(m) => Some(&mut m.vs.offset),
                            Expr::Subquery(s) => Some(&mut s.offset),
                            _ => None,
                        },
                        PosRange::new(t.start, end),
                        "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                        "offset may not be set multiple times",
                    )?;
                }
                Tok::Punct(Punct::At) => {
                    let t = self.bump();
                    let at = match *self.peek() {
                        Tok::Keyword(k @ (Keyword::Start | Keyword::End)) => {
                            self.bump();
                            self.expect(Punct::LParen, "@")?;
                            self.expect(Punct::RParen, "@")?;
                            if k == Keyword::Start {
                                AtModifier::Start
                            } else {
                                AtModifier::End
                            }
                        }
                        _ => {
                            let v = self.signed_number("@")?;
                            let ms = v * 1000.0;
                            if !ms.is_finite() || ms.abs() > i64::MAX as f64 {
                                return Err(ParseError::at(
                                    t.start,
                                    self.prev_end(),
                                    format!("timestamp out of bounds for @ modifier: {v}"),
                                ));
                            }
                            AtModifier::Timestamp(ms.round() as i64)
                        }
                    };
                    let end = self.prev_end();
                    set_modifier(
                        &mut e,
                        at,
                        |e| match e {
                            Expr::Selector(vs) => Some(&mut vs.at),
                            Expr::Matrix(m) => Some(&mut m.vs.at),
                            Expr::Subquery(s) => Some(&mut s.at),
                            _ => None,
                        },
                        PosRange::new(t.start, end),
                        "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                        "@ <timestamp> may not be set multiple times",
                    )?;
                }
                _ => return Ok(e),
            }
        }
    }

    /// After `offset`: a sign and a primary duration.
    fn offset_duration(&mut self) -> Result<DurationExpr, ParseError> {
        match *self.peek() {
            Tok::Punct(Punct::Sub) => {
                self.bump();
                Ok(DurationExpr::Neg(Box::new(self.duration_primary()?)))
            }
            Tok::Punct(Punct::Add) => {
                self.bump();
                self.duration_primary()
            }
            _ => self.duration_primary(),
        }
    }

    fn duration_primary(&mut self) -> Result<DurationExpr, ParseError> {
        let t = self.tok().clone();
        match &t.tok {
            Tok::Number(v) => {
                self.bump();
                Ok(DurationExpr::Number(*v))
            }
            Tok::Duration(ms) => {
                self.bump();
                Ok(DurationExpr::Number(*ms as f64 / 1000.0))
            }
            Tok::Punct(Punct::LParen) => {
                self.bump();
                let d = self.duration_expr(0)?;
                self.expect(Punct::RParen, "duration expression")?;
                Ok(d)
            }
            Tok::Ident(name) if self.peek_at(1) == &Tok::Punct(Punct::LParen) => {
                let name = name.to_ascii_lowercase();
                self.bump();
                self.bump();
                let d = match name.as_str() {
                    "step" => DurationExpr::Step,
                    "range" => DurationExpr::Range,
                    "min_of" | "max_of" => {
                        let a = self.duration_expr(0)?;
                        self.expect(Punct::Comma, "duration expression")?;
                        let b = self.duration_expr(0)?;
                        if name == "min_of" {
                            DurationExpr::MinOf(Box::new(a), Box::new(b))
                        } else {
                            DurationExpr::MaxOf(Box::new(a), Box::new(b))
                        }
                    }
                    _ => {
                        return Err(ParseError::at(
                            t.start,
                            t.end,
                            format!("unexpected function {name:?} in duration expression"),
                        ));
                    }
                };
                self.expect(Punct::RParen, "duration expression")?;
                Ok(d)
            }
            _ => {
                let mut e = self.unexpected(&t, "offset");
                e.msg.push_str(", expected number or duration");
                Err(e)
            }
        }
    }

    /// A duration expression: arithmetic over durations, in seconds.
    fn duration_expr(&mut self, min_bp: u8) -> Result<DurationExpr, ParseError> {
        let mut lhs = match *self.peek() {
            Tok::Punct(Punct::Sub) => {
                self.bump();
                DurationExpr::Neg(Box::new(self.duration_expr(UNARY_BP + 1)?))
            }
            Tok::Punct(Punct::Add) => {
                self.bump();
                self.duration_expr(UNARY_BP + 1)?
            }
            _ => self.duration_primary()?,
        };
        loop {
            let op = match self.peek() {
                Tok::Punct(Punct::Add) => BinOp::Add,
                Tok::Punct(Punct::Sub) => BinOp::Sub,
                Tok::Punct(Punct::Mul) => BinOp::Mul,
                Tok::Punct(Punct::Div) => BinOp::Div,
                Tok::Punct(Punct::Mod) => BinOp::Mod,
                Tok::Punct(Punct::Pow) => BinOp::Pow,
                _ => break,
            };
            let bp = match op {
                BinOp::Add | BinOp::Sub => 4,
                BinOp::Pow => 6,
                _ => 5,
            };
            if bp < min_bp {
                break;
            }
            self.bump();
            let rhs = self.duration_expr(if op == BinOp::Pow { bp } else { bp + 1 })?;
            lhs = DurationExpr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
}

/// Puts an `offset` or `@` value into the slot `slot_of` finds on `e`
/// (selector, range or subquery) and extends `e` to the modifier's end;
/// Prometheus's errors when `e` has no such slot or it is already set.
fn set_modifier<T>(
    e: &mut Expr,
    value: T,
    slot_of: impl FnOnce(&mut Expr) -> Option<&mut Option<T>>,
    pos: PosRange,
    not_allowed: &str,
    set_twice: &str,
) -> Result<(), ParseError> {
    let Some(slot) = slot_of(e) else {
        return Err(ParseError::at(pos.start, pos.end, not_allowed));
    };
    if slot.is_some() {
        return Err(ParseError::at(pos.start, pos.end, set_twice));
    }
    *slot = Some(value);
    set_end(e, pos.end);
    Ok(())
}

fn set_end(e: &mut Expr, end: usize) {
    match e {
        Expr::Selector(vs) => vs.pos.end = end,
        Expr::Matrix(m) => m.pos.end = end,
        Expr::Subquery(s) => s.pos.end = end,
        _ => {}
    }
}

fn type_err(pos: PosRange, msg: String) -> ParseError {
    ParseError::at(pos.start, pos.end, msg)
}

/// Prometheus's `checkAST`: operand and argument types.
fn check(e: &Expr) -> Result<(), ParseError> {
    match e {
        Expr::Number { .. } | Expr::String { .. } => Ok(()),
        Expr::Selector(vs) => check_selector(vs),
        Expr::Matrix(m) => check_selector(&m.vs),
        Expr::Paren { expr, .. } => check(expr),
        Expr::Subquery(s) => {
            check(&s.expr)?;
            let t = s.expr.value_type();
            if t != ValueType::Vector && t != ValueType::Scalar {
                return Err(type_err(
                    s.pos,
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        t.name()
                    ),
                ));
            }
            Ok(())
        }
        Expr::Unary { expr, pos, .. } => {
            check(expr)?;
            let t = expr.value_type();
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(type_err(
                    *pos,
                    "unary expression only allowed on expressions of type scalar or instant vector"
                        .into(),
                ));
            }
            Ok(())
        }
        Expr::Binary(b) => {
            check(&b.lhs)?;
            check(&b.rhs)?;
            let (lt, rt) = (b.lhs.value_type(), b.rhs.value_type());
            for t in [lt, rt] {
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(type_err(
                        b.pos,
                        "binary expression must contain only scalar and instant vector types"
                            .into(),
                    ));
                }
            }
            if b.return_bool && !b.op.is_comparison() {
                return Err(type_err(
                    b.pos,
                    "bool modifier can only be used on comparison operators".into(),
                ));
            }
            if b.op.is_comparison()
                && !b.return_bool
                && lt == ValueType::Scalar
                && rt == ValueType::Scalar
            {
                return Err(type_err(
                    b.pos,
                    "comparisons between scalars must use BOOL modifier".into(),
                ));
            }
            if b.op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
                return Err(type_err(
                    b.pos,
                    format!(
                        "set operator {:?} not allowed in binary scalar expression",
                        b.op.as_str()
                    ),
                ));
            }
            let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
            if let Some(m) = &b.matching {
                if !both_vectors && (!m.labels.is_empty() || m.on) {
                    return Err(type_err(
                        b.pos,
                        "vector matching only allowed between instant vectors".into(),
                    ));
                }
                if b.op.is_set()
                    && matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany)
                {
                    return Err(type_err(
                        b.pos,
                        format!("no grouping allowed for {:?} operation", b.op.as_str()),
                    ));
                }
                if m.on
                    && let Some(l) = m.include.iter().find(|l| m.labels.contains(l))
                {
                    return Err(type_err(
                        b.pos,
                        format!("label {l:?} must not occur in ON and GROUP clause at once"),
                    ));
                }
            }
            Ok(())
        }
        Expr::Aggregate(a) => {
            check(&a.expr)?;
            if a.expr.value_type() != ValueType::Vector {
                return Err(type_err(
                    a.pos,
                    format!(
                        "expected type instant vector in aggregation expression, got {}",
                        a.expr.value_type().name()
                    ),
                ));
            }
            if let Some(p) = &a.param {
                check(p)?;
                let want = if a.op == AggOp::CountValues {
                    ValueType::String
                } else {
                    ValueType::Scalar
                };
                if p.value_type() != want {
                    return Err(type_err(
                        a.pos,
                        format!(
                            "expected type {} in aggregation parameter, got {}",
                            want.name(),
                            p.value_type().name()
                        ),
                    ));
                }
            }
            Ok(())
        }
        Expr::Call(c) => {
            for (i, a) in c.args.iter().enumerate() {
                // `info`'s second argument selects data labels and may match
                // everything (`{label=~".*"}`).
                match a.unparen() {
                    Expr::Selector(_) if c.func.name == "info" && i == 1 => {}
                    _ => check(a)?,
                }
            }
            check_call(c.func, &c.args, c.pos)
        }
    }
}

fn check_selector(vs: &VectorSelector) -> Result<(), ParseError> {
    if vs.matchers.iter().all(|m| m.matches("")) {
        return Err(type_err(
            vs.pos,
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(())
}

fn check_call(f: &FunctionDef, args: &[Expr], pos: PosRange) -> Result<(), ParseError> {
    let n = args.len();
    let fixed = f.args.len();
    let ok = match f.variadic {
        0 => n == fixed,
        v if v > 0 => n + (v as usize) >= fixed && n <= fixed,
        _ => n + 1 >= fixed,
    };
    if !ok {
        let expected = match f.variadic {
            0 => format!("{fixed}"),
            v if v > 0 => format!("at most {fixed}"),
            _ => format!("at least {}", fixed - 1),
        };
        let msg = if f.variadic > 0 && n < fixed.saturating_sub(f.variadic as usize) {
            format!(
                "expected at least {} argument(s) in call to {:?}, got {n}",
                fixed - f.variadic as usize,
                f.name
            )
        } else {
            format!(
                "expected {expected} argument(s) in call to {:?}, got {n}",
                f.name
            )
        };
        return Err(type_err(pos, msg));
    }
    for (i, a) in args.iter().enumerate() {
        let want = f
            .args
            .get(i)
            .or(f.args.last())
            .copied()
            .unwrap_or(ValueType::Scalar);
        let got = a.value_type();
        if got != want {
            return Err(type_err(
                a.pos(),
                format!(
                    "expected type {} in call to function {:?}, got {}",
                    want.name(),
                    f.name,
                    got.name()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {}", e.render(s)))
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(e) => panic!("{s} parsed: {e:?}"),
            Err(e) => e.render(s),
        }
    }

    #[test]
    fn precedence() {
        // -2^2 = -(2^2); 2^3^2 right-assoc; * over +.
        let Expr::Unary {
            neg: true, expr, ..
        } = ok("-2^2")
        else {
            panic!()
        };
        assert!(matches!(
            *expr,
            Expr::Binary(BinaryExpr { op: BinOp::Pow, .. })
        ));
        assert!(matches!(ok("-2"), Expr::Number { val: -2.0, .. }));
        let Expr::Binary(b) = ok("1 + 2 * 3") else {
            panic!()
        };
        assert_eq!(b.op, BinOp::Add);
        let Expr::Binary(b) = ok("a or b and c") else {
            panic!()
        };
        assert_eq!(b.op, BinOp::Or);
        let Expr::Binary(b) = ok("2 ^ 3 ^ 2") else {
            panic!()
        };
        assert!(matches!(*b.rhs, Expr::Binary(_)));
        let Expr::Binary(b) = ok("foo offset 1m + 2") else {
            panic!()
        };
        assert_eq!(b.op, BinOp::Add);
    }

    #[test]
    fn selectors_and_modifiers() {
        let Expr::Matrix(m) = ok(r#"foo{a="b",c=~"d.*"}[5m] offset -1m @ 100"#) else {
            panic!()
        };
        assert_eq!(m.vs.matchers.len(), 3);
        assert_eq!(
            m.vs.offset,
            Some(DurationExpr::Neg(Box::new(DurationExpr::Number(60.0))))
        );
        assert_eq!(m.vs.at, Some(AtModifier::Timestamp(100_000)));
        let Expr::Selector(vs) = ok(r#"{"some.metric", a="b"}"#) else {
            panic!()
        };
        assert_eq!(vs.name.as_deref(), Some("some.metric"));
        ok("rate(foo[5m] anchored)");
        ok("sum by (job) (rate(foo[5m:1m]))");
        ok("sum(rate(foo[5m])) without (instance)");
        ok("topk(3, foo)");
        ok(r#"count_values("v", foo)"#);
        ok("a + on(x) group_left(y) b");
        ok("a + fill_left(5) fill_right(7) b");
        ok("a == bool fill(30) b");
        ok("foo[step()+1ms]");
        ok("foo offset min_of(step(), 1s)");
        ok("foo @ start()");
        ok("h </ 1.5");
        ok("changes(http_requests[24m+((1.5*2m)+2m)])");
    }

    #[test]
    fn errors_with_positions() {
        assert_eq!(
            err(r#"{a=""}"#),
            "1:1: parse error: vector selector must contain at least one non-empty matcher"
        );
        ok("foo{}");
        assert_eq!(
            err("rate(foo)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(
            err("nosuch(1)"),
            "1:1: parse error: unknown function with name \"nosuch\""
        );
        assert_eq!(
            err("1 > 2"),
            "1:1: parse error: comparisons between scalars must use BOOL modifier"
        );
        assert!(err("foo{a=}").contains("unexpected"));
        assert!(err("sum(foo").contains("unexpected end of input"));
        assert_eq!(
            err("up{"),
            "1:4: parse error: unexpected end of input inside braces"
        );
        assert!(err("(1+2)[5m]").contains("ranges only allowed for vector selectors"));
    }
}
