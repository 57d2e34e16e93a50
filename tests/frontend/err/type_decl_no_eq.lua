-- error: 3:1: '=' expected near <eof>
type X
