"""Who may call: caller identity (Entra bearer tokens or gateway headers), client-to-agent authorization in
Microsoft Graph, and LiveKit's webhook signatures."""
