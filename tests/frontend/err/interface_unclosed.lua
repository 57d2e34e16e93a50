-- error: 5:1: 'end' expected (to close 'interface' at line 2) near <eof>
interface I
  function f(self)

