import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { logicalId, synthesize } from './template.ts';

describe.each([
  ['iam', 'AWS_IAM'],
  ['none', 'NONE'],
] as const)('the browser page with apiAuth %s', (apiAuth, authorizationType) => {
  it(`serves GET and HEAD / from the page function (plain proxy integration, ${authorizationType})`, () => {
    const { stack, template } = synthesize({ apiAuth });
    const pageFunction = logicalId(stack, stack.browserPage.function);
    const rootMethods = Object.values(template.findResources('AWS::ApiGateway::Method')).filter((method) =>
      JSON.stringify(method.Properties.ResourceId).includes('RootResourceId'),
    );

    expect(rootMethods.map((method) => method.Properties.HttpMethod).sort()).toEqual(['GET', 'HEAD']);
    for (const method of rootMethods) {
      expect(method.Properties.AuthorizationType).toBe(authorizationType);
      expect(method.Properties.RequestValidatorId).toBeDefined();
      expect(method.Properties.Integration).toMatchObject({ Type: 'AWS_PROXY' });
      // A buffered answer: the page is about 25 KB.
      expect(method.Properties.Integration.ResponseTransferMode).toBeUndefined();
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(pageFunction);
    }
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'page' }) },
      MemorySize: 128,
    });
  });
});
