"""From passages to an answer: the highlighted sentence, the short answer, follow-up questions,
a conversation as Markdown, and replies to small talk.

The package exports nothing: callers import the module they need (`answer`, `followup`,
`smalltalk`, `transcript`, `reader`, ...).
"""
