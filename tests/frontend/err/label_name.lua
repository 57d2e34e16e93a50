-- error: 2:1: unexpected symbol near '::'
:: 1 ::
