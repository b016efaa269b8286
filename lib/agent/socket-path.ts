/** Where the console's agent listens unless NATFARM_AGENT_SOCKET says otherwise (apart from the protocol, so that a caller that only asks whether an agent is there loads nothing else). */
export const DEFAULT_AGENT_SOCKET = "/run/natfarm/agent.sock";
export const agentSocketPath = (env: NodeJS.ProcessEnv = process.env) => env.NATFARM_AGENT_SOCKET || DEFAULT_AGENT_SOCKET;
